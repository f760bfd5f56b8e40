package httpd

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prefork/prefork/loop"
)

// Deferred is a response a handler completes later, from any goroutine: the
// handler calls Ctx.Defer, starts its work and returns at once, and the
// loop goes on serving other connections. Nothing of the Ctx may be used
// after Serve returns: copy what the work needs (strings, a copy of the body)
// before.
//
// The goroutine that owns a Deferred builds its response with the embedded
// Response (SetStatus, SetHeader, Write...) and calls Done once; or calls
// Flush to send what it has written so far, as a chunked response, then
// writes more and flushes again, and ends with Done. Responses to requests
// the client pipelined behind a deferred one wait for it, so they leave in
// order. A Deferred costs no goroutine of its own: thousands can wait on one
// loop.
//
// If the client goes away first, Context is cancelled and Done and Flush do
// nothing (they are always safe to call). A graceful stop waits for
// deferred responses up to its grace period and sends them with
// "Connection: close".
type Deferred struct {
	Response

	srv    *Server
	conn   *loop.Conn
	q      *deferQueue
	head   bool // HEAD: no body
	minor  uint8
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
	line   []byte // the request line, for the access log

	// The owner's side: Done and Flush may race with each other when a
	// handler misuses them from two goroutines; mu keeps that harmless.
	mu      sync.Mutex
	done    bool
	flushed bool // Flush was called

	// Loop side.
	complete   bool      // Done has reached the loop
	streaming  bool      // a Flush has reached the loop: the body goes in pieces
	streamHead *Response // ... with this status and these headers
	chunked    bool      // ... with the chunked coding
	headSent   bool      // the head went out
	chunks     [][]byte  // flushed pieces waiting for their turn
	sent       int       // body bytes written
	closeAfter bool      // the request said close, or the response is close-delimited
}

// deferQueue is one connection's responses owed, in request order: each
// deferred response, and the bytes of the responses after it that were
// ready before it.
type deferQueue struct {
	items  []owed
	closed bool // the connection went away
	// unread: input was left unserved behind a request that closes.
	unread bool
	// closeAtEnd: a response queued behind the deferred ones closes the
	// connection (Connection: close, an error, a drain).
	closeAtEnd  bool
	closeReason loop.CloseReason
}

// queued is how many response bytes wait behind deferred ones.
func (q *deferQueue) queued() int {
	n := 0
	for _, it := range q.items {
		n += len(it.after)
	}
	return n
}

type owed struct {
	d     *Deferred
	after []byte
}

// Defer postpones this request's response until the returned Deferred is
// done. Call it at most once, from Serve.
func (c *Ctx) Defer() *Deferred {
	if c.deferred != nil {
		return c.deferred
	}
	d := &Deferred{srv: c.srv, conn: c.conn, head: c.IsHead(), minor: c.req.Minor, start: time.Now()}
	d.status = 200
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if c.srv.alog != nil {
		d.line = appendRequestLine(nil, &c.req)
	}
	c.deferred = d
	return d
}

// Context is cancelled when the client closes the connection (or the
// server stops) before the response is done.
func (d *Deferred) Context() context.Context { return d.ctx }

// Done sends the response. The Deferred must not be used after it.
func (d *Deferred) Done() {
	d.mu.Lock()
	if d.done {
		d.mu.Unlock()
		return
	}
	d.done = true
	var last []byte
	if d.flushed {
		last = d.takeBody()
	}
	d.mu.Unlock()
	d.conn.Loop().Post(func() { d.srv.finishDeferred(d, last) })
}

// Flush sends the head, if it has not gone yet, and the body written since
// the last Flush, without waiting for Done: a streamed response. The status
// and headers are taken at the first Flush; later changes are not sent.
// HTTP/1.1 clients get a chunked body; HTTP/1.0 clients a body that ends
// when the connection closes.
func (d *Deferred) Flush() {
	d.mu.Lock()
	if d.done {
		d.mu.Unlock()
		return
	}
	var head *Response
	if !d.flushed {
		// The loop writes the head while the owner goes on: it gets its own copy.
		head = &Response{status: d.status, hdr: append([]byte(nil), d.hdr...)}
	}
	d.flushed = true
	piece := d.takeBody()
	d.mu.Unlock()
	d.conn.Loop().Post(func() { d.srv.streamDeferred(d, piece, head) })
}

// takeBody hands the body written so far to the loop: a copy, since the
// owner goes on writing into its buffer.
func (d *Deferred) takeBody() []byte {
	if len(d.body) == 0 {
		return nil
	}
	p := append([]byte(nil), d.body...)
	d.body = d.body[:0]
	return p
}

// deferResponse is called on the loop when Serve returned having deferred:
// the response joins the connection's queue.
func (srv *Server) deferResponse(c *loop.Conn, s *connState, d *Deferred) {
	q := srv.waiting[s]
	if q == nil {
		q = &deferQueue{}
		if srv.waiting == nil {
			srv.waiting = map[*connState]*deferQueue{}
		}
		srv.waiting[s] = q
	}
	d.q = q
	d.closeAfter = s.resp == connClose
	q.items = append(q.items, owed{d: d})
	s.flags |= sDeferred
	srv.deferredNow++
	if c != nil {
		// Its completion comes from a goroutine or a timer: the loop must
		// let them run while it waits (loop.AddOutside).
		c.Loop().AddOutside(1)
	}
}

// queueOutput keeps responses that are ready behind a deferred one.
func (srv *Server) queueOutput(s *connState, out []byte) {
	q := srv.waiting[s]
	last := &q.items[len(q.items)-1]
	last.after = append(last.after, out...)
}

// streamDeferred runs on the loop with what a Flush sent: a piece of the
// body, and at the first Flush the head (a copy of the owner's).
func (srv *Server) streamDeferred(d *Deferred, piece []byte, head *Response) {
	if d.q.closed {
		return // the client is gone: nothing to send it
	}
	if head != nil {
		d.streaming, d.streamHead = true, head
	}
	if piece != nil {
		d.chunks = append(d.chunks, piece)
	}
	srv.flushQueue(d.conn, d.q)
}

// finishDeferred runs on the loop when Done was called: the owner no longer
// touches d, so its Response is read here. last is the body written since
// the last Flush of a stream.
func (srv *Server) finishDeferred(d *Deferred, last []byte) {
	if d.q.closed {
		return
	}
	if last != nil {
		d.chunks = append(d.chunks, last)
	}
	d.complete = true
	srv.flushQueue(d.conn, d.q)
}

// flushQueue writes what the head of q can send, in order: a deferred
// response that is done (and the ready responses behind it), or the pieces
// of a streamed one so far.
func (srv *Server) flushQueue(c *loop.Conn, q *deferQueue) {
	s, _ := c.Context().(*connState)
	drain := s != nil && s.flags&sDrain != 0
	out := srv.out[:0]
	closing := false
	for len(q.items) > 0 {
		it := &q.items[0]
		d := it.d
		if !d.headSent {
			if !d.complete && !d.streaming {
				break // nothing to send yet; what is behind it waits
			}
			hdr := connNone
			switch {
			case d.closeAfter || drain:
				hdr, d.closeAfter = connClose, true
			case d.minor == 0:
				hdr = connKeepAlive
			}
			switch {
			case d.streaming && bodyAllowed(d.streamHead.status):
				if d.minor == 0 {
					// HTTP/1.0 has no chunked coding: the body ends
					// with the connection.
					hdr, d.closeAfter = connClose, true
				} else {
					d.chunked = true
					d.streamHead.AddField(chunkedField)
				}
				out = srv.rs.appendHeadNoLength(out, d.streamHead, hdr)
			case d.streaming:
				// 204 or 304 streamed: there is no body to send.
				out = srv.rs.appendHead(out, d.streamHead, hdr)
				d.head = true
			default:
				out = srv.rs.appendHead(out, &d.Response, hdr)
				if !d.head && bodyAllowed(d.status) {
					out = append(out, d.Response.body...)
					d.sent += len(d.Response.body)
				}
			}
			d.headSent = true
		}
		if d.streaming {
			for _, p := range d.chunks {
				switch {
				case d.head || len(p) == 0:
				case d.chunked:
					d.sent += len(p)
					out = strconv.AppendInt(out, int64(len(p)), 16)
					out = append(out, "\r\n"...)
					out = append(out, p...)
					out = append(out, "\r\n"...)
				default:
					d.sent += len(p)
					out = append(out, p...)
				}
			}
			d.chunks = d.chunks[:0]
			if d.complete && d.chunked && !d.head {
				out = append(out, "0\r\n\r\n"...)
			}
		}
		if !d.complete {
			break
		}
		srv.deferredDone(c)
		srv.requests++
		st := d.status
		if d.streamHead != nil {
			st = d.streamHead.status
		}
		srv.stats.count(st)
		srv.stats.observe(time.Since(d.start))
		if srv.alog != nil {
			srv.alog.logLine(c, d.line, st, d.sent, time.Since(d.start))
		}
		d.cancel()
		out = append(out, it.after...)
		q.items[0] = owed{}
		q.items = q.items[1:]
		if d.closeAfter {
			closing = true
			break
		}
	}
	if len(out) > 0 {
		_, _ = c.Write(out) // ErrClosed only: the connection is closing
	}
	if cap(out) <= outKeepMax {
		srv.out = out[:0]
	}
	switch {
	case closing:
		srv.connGone(s)
		if q.unread {
			c.CloseLingering(loop.ReasonLocal)
		} else {
			c.Close(loop.ReasonLocal)
		}
	case len(q.items) == 0:
		if s != nil {
			s.flags &^= sDeferred
			delete(srv.waiting, s)
		}
		switch {
		case q.closeAtEnd && (q.unread || q.closeReason == loop.ReasonProtocolError):
			c.CloseLingering(q.closeReason)
		case q.closeAtEnd:
			c.Close(q.closeReason)
		case drain:
			c.Close(loop.ReasonShutdown)
		}
	}
}

// deferredDone accounts for a deferred response that is done or moot: one
// less in flight (and outside the loop), and room for a held connection.
func (srv *Server) deferredDone(c *loop.Conn) {
	srv.deferredNow--
	if c != nil {
		c.Loop().AddOutside(-1)
	}
	srv.release()
}

// connGone cancels what a closed connection was still owed.
func (srv *Server) connGone(s *connState) {
	q := srv.waiting[s]
	if q == nil {
		return
	}
	q.closed = true
	for _, it := range q.items {
		it.d.cancel()
		srv.deferredDone(it.d.conn)
	}
	q.items = nil
	delete(srv.waiting, s)
	s.flags &^= sDeferred
}

var chunkedField = Field{line: "Transfer-Encoding: chunked\r\n"}
