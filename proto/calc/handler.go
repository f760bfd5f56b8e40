package calc

import "github.com/prefork/prefork/loop"

// keepOut bounds the scratch output buffer a Handler keeps between calls, so
// one burst of pipelined requests does not pin its memory for good.
const keepOut = 1 << 20

// Handler serves the calc protocol on a loop. It keeps no per-connection
// state: a frame cut by a read stays in the loop's unconsumed input until the
// rest arrives.
//
// A Handler belongs to one loop and is used on its thread only, like
// everything a loop calls; give each loop its own (New).
type Handler struct {
	out      []byte // scratch output, reused by every OnData
	requests uint64 // frames answered
}

var _ loop.Handler = (*Handler)(nil)

// New returns a Handler for one loop.
func New() *Handler {
	return &Handler{out: make([]byte, 0, 4<<10)}
}

// Requests returns the number of request frames the Handler has answered,
// malformed payloads included. Call it on the loop's thread (from a timer, a
// task given to Loop.Post or a handler callback).
func (h *Handler) Requests() uint64 { return h.requests }

// OnOpen does nothing: a calc connection has no state.
func (h *Handler) OnOpen(*loop.Conn) {}

// OnData answers every complete frame of in with one Write. A frame left
// incomplete starts the connection's header clock: if the rest does not
// arrive within the loop's HeaderTimeout, the connection is closed
// (loop.ReasonHeaderTimeout). On a framing
// error it answers the frames before it, closes the connection lingering
// (loop.ReasonProtocolError) and consumes everything.
func (h *Handler) OnData(c *loop.Conn, in []byte) int {
	consumed, frames, out, err := process(in, h.out[:0])
	h.requests += uint64(frames)
	if len(out) > 0 {
		// Write copies out into the loop's coalescing buffer; it fails only
		// on a closing connection, whose answers no longer matter.
		_, _ = c.Write(out)
	}
	if cap(out) <= keepOut {
		h.out = out[:0]
	} else {
		h.out = make([]byte, 0, 4<<10)
	}
	if err != nil {
		c.CloseLingering(loop.ReasonProtocolError)
		return len(in)
	}
	// The loop's header clock (--header-timeout) bounds a frame cut by a
	// read: it runs from the read that brought its first bytes.
	if consumed > 0 {
		c.EndHead()
	}
	if consumed < len(in) {
		c.BeginHead()
	}
	return consumed
}

// OnClose does nothing.
func (h *Handler) OnClose(*loop.Conn, loop.CloseReason) {}
