package httpd

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/loop"
)

// Options configure a Server.
type Options struct {
	// ServerName is the value of the Server header. Default "prefork". It
	// must be a valid header value: visible ASCII, spaces and tabs inside,
	// and bytes >= 0x80; New panics otherwise, since it would let a
	// configuration inject header lines.
	ServerName string
	// Handler answers the requests. Default Greeting.
	Handler Handler
	// MaxBody bounds a request body (after de-chunking); a larger one is
	// answered 413 and the connection closed lingering. Default 1 MiB. The
	// loop's Config.MaxInput must hold a whole request: MaxBody plus some
	// room for the head and chunk framing (wire.Settings.MaxInput).
	MaxBody int64
	// MaxInflight bounds the deferred responses not done yet (net/http
	// requests are deferred ones); past it, connections with a new request
	// stop being read until one is done, so new requests wait in the kernel.
	// 0: no bound.
	MaxInflight int
	// AccessLog, when set, gets one line per request (see accessLog), in
	// batches: no system call per request.
	AccessLog io.Writer
}

// DefaultMaxBody is Options.MaxBody's default.
const DefaultMaxBody = 1 << 20

// chunkSlack is the chunk framing a chunked body may carry beyond MaxBody
// (sizes, extensions, trailers); more is answered 413 like a large body.
const chunkSlack = 64 << 10

// freeMax bounds the connection states a Handler keeps for reuse.
const freeMax = 4096

// outKeepMax bounds the output buffer a Handler keeps between calls; a
// larger one (a very long pipeline) goes back to the GC.
const outKeepMax = 1 << 20

// Server serves HTTP/1.x on one loop: it is the loop.Handler (and
// loop.Drainer) of the http protocol, and calls the Options.Handler for each
// request. Like every loop.Handler it is used on its loop's goroutine only.
type Server struct {
	rs       *responses
	h        Handler
	maxBody  int64
	ctx      Ctx          // reused for every request
	chunked  []byte       // de-chunked bodies, reused
	out      []byte       // responses built during one OnData, then given to Conn.Write
	free     []*connState // states of closed connections, for reuse
	requests uint64

	// waiting holds the connections owed a deferred response.
	waiting     map[*connState]*deferQueue
	deferredNow int // deferred responses not done yet
	maxInflight int
	// room is the output the connection being served may still be owed
	// (loop.Conn.OutputRoom) when serve starts: past it, pipelined requests
	// wait in the input until the client has read what went before.
	room     int
	held     []*loop.Conn // connections holding a request back, oldest first
	stats    httpStats
	alog     *accessLog   // nil: no access log
	streamer BodyStreamer // the handler, if it streams bodies
	streams  map[*connState]BodyFunc
}

// maxQueued bounds the responses a connection may have ready behind a
// deferred one (a client pipelining far ahead of a slow response); past it
// the connection is closed.
const maxQueued = 1 << 20

var (
	_ loop.Handler = (*Server)(nil)
	_ loop.Drainer = (*Server)(nil)
)

// New returns a Server for one loop.
func New(opts Options) *Server {
	name := opts.ServerName
	if name == "" {
		name = "prefork"
	}
	if !validServerName(name) {
		panic(fmt.Sprintf("http: invalid Options.ServerName %q", name))
	}
	h := opts.Handler
	if h == nil {
		h = Greeting()
	}
	maxBody := opts.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	srv := &Server{rs: newResponses(name), h: h, maxBody: maxBody, maxInflight: opts.MaxInflight,
		out: make([]byte, 0, 4<<10), room: math.MaxInt}
	srv.ctx.srv = srv
	srv.streamer, _ = h.(BodyStreamer)
	if opts.AccessLog != nil {
		srv.alog = &accessLog{w: opts.AccessLog}
	}
	return srv
}

// ValidServerName reports whether name can be Options.ServerName: a header
// value without CR, LF, NUL or other controls, and no leading or trailing
// blank (New panics on anything else).
func ValidServerName(name string) bool { return name != "" && validServerName(name) }

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

// Requests returns how many final responses the Server has written, errors
// included (interim 100 Continue responses are not counted). Call it on the
// loop's thread.
//
// Deferred returns how many deferred responses are not done yet.
func (h *Server) Requests() uint64 { return h.requests }

// Deferred returns how many deferred responses are not done yet (loop thread).
func (h *Server) Deferred() int { return h.deferredNow }

// OnOpen gives the connection its state, reusing one of a closed connection
// when there is one.
func (h *Server) OnOpen(c *loop.Conn) {
	c.SetContext(h.newState())
}

func (h *Server) newState() *connState {
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
func (h *Server) OnData(c *loop.Conn, in []byte) int {
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
	pos := 0
	for {
		h.room = c.OutputRoom()
		n, out, act, nresp := s.serve(in[pos:], h.out[:0], h, c)
		pos += n
		h.requests += uint64(nresp)
		queued := s.flags&sDeferred != 0
		if len(out) > 0 {
			if queued {
				h.queueOutput(s, out)
			} else {
				// ErrClosed only: the connection is closing and the output moot.
				_, _ = c.Write(out)
			}
		}
		if cap(out) <= outKeepMax {
			h.out = out[:0]
		} else {
			h.out = make([]byte, 0, 4<<10)
		}
		if act == actHold {
			// At MaxInflight: this request waits, unread beyond what the
			// loop already has, until a deferred response is done.
			c.HoldInput()
			h.held = append(h.held, c)
			return pos
		}
		if act == actDefer {
			d := h.ctx.deferred
			h.deferResponse(c, s, d)
			if d.closeAfter {
				// Nothing after a request that closes is served.
				d.q.unread = pos < len(in)
				return len(in)
			}
			if pos < len(in) {
				continue
			}
			return pos
		}
		if queued {
			q := h.waiting[s]
			if act != actKeep {
				// The connection closes once what is owed has gone.
				q.closeAtEnd, q.closeReason = true, closeReason(act)
				q.unread = q.unread || pos < len(in)
				return len(in)
			}
			if q.queued() > maxQueued {
				c.Close(loop.ReasonOverflow)
				return len(in)
			}
			return pos
		}
		switch act {
		case actKeep:
			return pos
		case actClose:
			h.close(c, pos < len(in), loop.ReasonLocal)
		case actShutdown:
			h.close(c, pos < len(in), loop.ReasonShutdown)
		case actError:
			c.CloseLingering(loop.ReasonProtocolError)
		}
		return len(in) // the rest is moot: the connection is closing
	}
}

func closeReason(act action) loop.CloseReason {
	switch act {
	case actShutdown:
		return loop.ReasonShutdown
	case actError:
		return loop.ReasonProtocolError
	}
	return loop.ReasonLocal
}

// close closes after the flush. When the client has already sent more (it
// pipelined past the last request), the close lingers: closing a socket
// with unread input makes the kernel send a reset, which can destroy the
// response before the client reads it.
func (h *Server) close(c *loop.Conn, unread bool, reason loop.CloseReason) {
	if unread {
		c.CloseLingering(reason)
	} else {
		c.Close(reason)
	}
}

// OnClose recycles the connection's state; deferred responses still owed
// to it are cancelled (their Context is done).
func (h *Server) OnClose(c *loop.Conn, _ loop.CloseReason) {
	s, ok := c.Context().(*connState)
	if ok && s.flags&sStream != 0 {
		h.endStream(s, ErrBodyAborted)
	}
	if ok && s.flags&sDeferred != 0 {
		h.connGone(s)
	}
	if h.alog != nil {
		delete(h.alog.peers, c)
	}
	c.SetContext(nil)
	if ok && len(h.free) < freeMax {
		*s = connState{}
		h.free = append(h.free, s)
	}
}

// OnDrain starts the end of a connection when its worker drains (a reload,
// a scale-down, a graceful stop). A connection with a request in flight (a
// partial head or an unfinished body, a deferred response) is answered
// first, with "Connection: close", and closed after it. An idle keep-alive
// connection, or one that has not sent its first request, is not closed at once: a request may be on its way, and the
// client could not tell a close under it from a server that died. It gets
// "Connection: close" on whatever request arrives, and is closed once it
// has been quiet for the loop's DrainQuiet (1 s; loop.Conn.CloseWhenQuiet).
func (h *Server) OnDrain(c *loop.Conn) {
	if h.alog != nil {
		h.alog.flush()
	}
	s, ok := c.Context().(*connState)
	if !ok {
		c.Close(loop.ReasonShutdown)
		return
	}
	s.flags |= sDrain
	if s.state == stHead && s.flags&(sPartial|sDeferred) == 0 {
		// Between requests, or before the first: nothing is owed.
		c.CloseWhenQuiet(loop.ReasonShutdown)
	}
}

// ErrRequestTimeout answers a request head that did not complete within
// the header timeout (--header-timeout): 408, then the connection closes.
var ErrRequestTimeout = &Error{408, "request head not received within the header timeout"}

// OnHeadTimeout answers a head that did not arrive whole within the loop's
// HeaderTimeout with 408 and closes lingering (the client may still be
// sending). A connection with a deferred response owed is closed without
// one: its answers must leave in order, and the 408 cannot go first.
func (h *Server) OnHeadTimeout(c *loop.Conn) {
	s, ok := c.Context().(*connState)
	if !ok || s.flags&sDeferred != 0 {
		return // the loop closes it (ReasonHeaderTimeout)
	}
	var none Request // the head never parsed
	out := h.appendError(h.out[:0], c, &none, ErrRequestTimeout)
	_, _ = c.Write(out)
	h.out = out[:0]
	c.CloseLingering(loop.ReasonHeaderTimeout)
}

// respond runs the handler for the request in flight, whose input has all
// arrived, and appends its response.
func (srv *Server) respond(s *connState, body, out []byte, c *loop.Conn) ([]byte, action) {
	ctx := &srv.ctx
	ctx.reset()
	ctx.reqBody, ctx.conn, ctx.st = body, c, s
	srv.h.Serve(ctx)
	if ctx.deferred != nil {
		return out, actDefer
	}
	hdr, act := s.connAction()
	srv.stats.count(ctx.status)
	out = srv.rs.appendHead(out, &ctx.Response, hdr)
	sent := 0
	if s.flags&sHead == 0 && bodyAllowed(ctx.status) {
		out = append(out, ctx.Response.body...)
		sent = int(ctx.bodyLen())
		if ctx.hasFile && ctx.fileLen > 0 {
			var ok bool
			if out, ok = srv.appendFile(s, out, c, &ctx.Response); !ok {
				act = actError // the head promised more than the file gave
			}
		}
	}
	if srv.alog != nil {
		var took time.Duration
		if c != nil {
			took = time.Since(c.Loop().Now()) // since the loop turn that read it
		}
		srv.alog.log(c, &ctx.req, ctx.status, sent, took)
	}
	return out, act
}

// release resumes held connections while there is room in flight.
func (srv *Server) release() {
	for len(srv.held) > 0 && (srv.maxInflight == 0 || srv.deferredNow < srv.maxInflight) {
		c := srv.held[0]
		srv.held[0] = nil
		srv.held = srv.held[1:]
		if !c.Closed() {
			c.ResumeInput()
		}
	}
}

// appendError appends an error response to r (parsed as far as it went),
// counts and logs it.
func (srv *Server) appendError(out []byte, c *loop.Conn, r *Request, err *Error) []byte {
	srv.stats.count(err.Status)
	if srv.alog != nil {
		srv.alog.log(c, r, err.Status, 0, 0)
	}
	return srv.rs.appendError(out, err, r.Flags&FlagHEAD != 0)
}

// OnStop writes out the access log's buffer as the loop stops
// (loop.Stopper).
func (h *Server) OnStop() {
	if h.alog != nil {
		h.alog.flush()
	}
}

// smallFile is the largest file body read into the response, so head and
// body leave in one write; larger ones go with sendfile(2).
const smallFile = 16 << 10

// appendFile sends a response's file body: read into out when small (or
// when the connection's output is queued behind a deferred response, or in
// tests without a connection), else after out with Conn.SendFile on a
// descriptor of its own. ok is false when the file gave less than its length.
func (srv *Server) appendFile(s *connState, out []byte, c *loop.Conn, res *Response) ([]byte, bool) {
	if c == nil || res.fileLen <= smallFile || s.flags&sDeferred != 0 {
		return preadAppend(out, res.fileFD, res.fileOff, res.fileLen)
	}
	fd, err := unix.FcntlInt(uintptr(res.fileFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return preadAppend(out, res.fileFD, res.fileOff, res.fileLen) // EMFILE: copy it instead
	}
	_, _ = c.Write(out)
	// ErrClosed only (the connection is closing; SendFile closed fd).
	_ = c.SendFile(fd, res.fileOff, res.fileLen, true)
	return out[:0], true
}

// preadAppend appends n bytes of fd from off.
func preadAppend(out []byte, fd int, off, n int64) ([]byte, bool) {
	start := len(out)
	out = slices.Grow(out, int(n))[:start+int(n)]
	for got := 0; got < int(n); {
		k, err := unix.Pread(fd, out[start+got:], off+int64(got))
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			return out[:start+got], false
		}
		got += k
	}
	return out, true
}
