package httpd

import (
	"fmt"

	"github.com/prefork/prefork/loop"
)

// Options configure a Handler.
type Options struct {
	// ServerName is the value of the Server header. Default "prefork". It
	// must be a valid header value: visible ASCII, spaces and tabs inside,
	// and bytes >= 0x80; New panics otherwise, since it would let a
	// configuration inject header lines.
	ServerName string
}

// freeMax bounds the connection states a Handler keeps for reuse.
const freeMax = 4096

// outKeepMax bounds the output buffer a Handler keeps between calls; a
// larger one (a very long pipeline) goes back to the GC.
const outKeepMax = 1 << 20

// Handler serves HTTP/1.x on one loop. It implements loop.Handler and
// loop.Drainer. Like every Handler it is used on its loop's thread only.
type Handler struct {
	rs       *responses
	out      []byte       // responses built during one OnData, then given to Conn.Write
	free     []*connState // states of closed connections, for reuse
	requests uint64
}

var (
	_ loop.Handler = (*Handler)(nil)
	_ loop.Drainer = (*Handler)(nil)
)

// New returns a Handler for one loop.
func New(opts Options) *Handler {
	name := opts.ServerName
	if name == "" {
		name = "prefork"
	}
	if !validServerName(name) {
		panic(fmt.Sprintf("http: invalid Options.ServerName %q", name))
	}
	return &Handler{rs: newResponses(name), out: make([]byte, 0, 4<<10)}
}

func validServerName(name string) bool {
	if name[0] == ' ' || name[0] == '\t' || name[len(name)-1] == ' ' || name[len(name)-1] == '\t' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !valueOK[name[i]] {
			return false
		}
	}
	return true
}

// Requests returns how many final responses the Handler has written, errors
// included (interim 100 Continue responses are not counted). Call it on the
// loop's thread.
func (h *Handler) Requests() uint64 { return h.requests }

// OnOpen gives the connection its state, reusing one of a closed connection
// when there is one.
func (h *Handler) OnOpen(c *loop.Conn) {
	c.SetContext(h.newState())
}

func (h *Handler) newState() *connState {
	if k := len(h.free); k > 0 {
		s := h.free[k-1]
		h.free[k-1] = nil
		h.free = h.free[:k-1]
		return s
	}
	return new(connState)
}

// OnData serves the input: see connState.serve. All responses leave in one
// Conn.Write, so the loop sends them with one write(2).
func (h *Handler) OnData(c *loop.Conn, in []byte) int {
	s, ok := c.Context().(*connState)
	if !ok {
		s = h.newState()
		c.SetContext(s)
	}
	lp := c.Loop()
	if now := lp.Now(); now.Unix() != h.rs.sec {
		h.rs.setDate(now)
	}
	if lp.Draining() {
		// The loop may deliver input that was waiting when the drain began
		// before it calls OnDrain: the request it completes is the last.
		s.flags |= sDrain
	}
	n, out, act, nresp := s.serve(in, h.out[:0], h.rs)
	h.requests += uint64(nresp)
	if len(out) > 0 {
		// ErrClosed only: the connection is closing and the output moot.
		_, _ = c.Write(out)
	}
	if cap(out) <= outKeepMax {
		h.out = out[:0]
	} else {
		h.out = make([]byte, 0, 4<<10)
	}
	switch act {
	case actKeep:
		return n
	case actClose:
		h.close(c, n < len(in), loop.ReasonLocal)
	case actShutdown:
		h.close(c, n < len(in), loop.ReasonShutdown)
	case actError:
		c.CloseLingering(loop.ReasonProtocolError)
	}
	return len(in) // the rest is moot: the connection is closing
}

// close closes after the flush. When the client has already sent more (it
// pipelined past the last request), the close lingers: closing a socket
// with unread input makes the kernel send a reset, which can destroy the
// response before the client reads it.
func (h *Handler) close(c *loop.Conn, unread bool, reason loop.CloseReason) {
	if unread {
		c.CloseLingering(reason)
	} else {
		c.Close(reason)
	}
}

// OnClose recycles the connection's state.
func (h *Handler) OnClose(c *loop.Conn, _ loop.CloseReason) {
	s, ok := c.Context().(*connState)
	c.SetContext(nil)
	if ok && len(h.free) < freeMax {
		*s = connState{}
		h.free = append(h.free, s)
	}
}

// OnDrain closes an idle connection at once (loop.ReasonShutdown). A
// connection with a request in flight (a partial head or an unfinished
// body) is answered first, with "Connection: close", and closed after it.
func (h *Handler) OnDrain(c *loop.Conn) {
	s, ok := c.Context().(*connState)
	if !ok || s.idle() {
		c.Close(loop.ReasonShutdown)
		return
	}
	s.flags |= sDrain
}
