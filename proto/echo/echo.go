// Package echo is the echo protocol: every byte a client sends comes back to
// it, in order, whatever the sizes of its reads and writes.
//
// Backpressure is the loop's: when a client sends faster than it reads, the
// loop stops reading from it once the unsent echo passes Config.HighWater, so
// memory stays bounded however much the client sends.
package echo

import "github.com/prefork/prefork/loop"

// Handler echoes. One Handler serves every connection of one loop; it keeps
// no per-connection state.
type Handler struct {
	reads uint64
}

// New returns an echo handler.
func New() *Handler { return &Handler{} }

// OnOpen does nothing: an echo connection has no state.
func (h *Handler) OnOpen(*loop.Conn) {}

// OnData writes the input back and consumes all of it.
func (h *Handler) OnData(c *loop.Conn, in []byte) int {
	h.reads++
	// Write takes all of in or refuses because the connection is closing; in
	// both cases the input is done with.
	_, _ = c.Write(in)
	return len(in)
}

// OnClose does nothing.
func (h *Handler) OnClose(*loop.Conn, loop.CloseReason) {}

// Requests returns how many reads were echoed (an echo "request" is one
// delivery of input). Loop thread only.
func (h *Handler) Requests() uint64 { return h.reads }
