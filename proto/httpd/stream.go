package httpd

import (
	"errors"
	"io"

	"github.com/prefork/prefork/loop"
)

// BodyStreamer is an optional interface of a Handler that wants some
// request bodies in pieces, as they arrive, instead of buffered whole (an
// upload larger than MaxBody, a body to forward as it comes). StreamBody is
// called on the loop's goroutine when the head of a request with a body has
// arrived, with c.Body() empty. To stream, it calls c.Defer() and returns
// the function that gets the body; the Deferred is completed whenever the
// handler likes (after the last piece, typically). To have the body
// buffered and Serve called as usual, it returns nil.
//
// Streamed bodies are not bound by MaxBody; they may be up to 4 GiB.
type BodyStreamer interface {
	StreamBody(c *Ctx) BodyFunc
}

// BodyFunc gets a streamed body on the loop's goroutine, piece by piece: a
// piece with a nil error (valid only during the call: copy what is kept),
// then (nil, io.EOF) at the end, or (nil, err) if the body cannot be
// finished: malformed chunked framing (ErrBadChunk...), or the connection
// closed (ErrBodyAborted). It must not block.
type BodyFunc func(piece []byte, err error)

// ErrBodyAborted is what a BodyFunc gets when the connection closes before
// the body has all arrived.
var ErrBodyAborted = errors.New("httpd: connection closed before the request body ended")

// maxStreamBody bounds a streamed body (the counters are 32-bit).
const maxStreamBody = 1<<32 - 1

// askStream asks the BodyStreamer about the request whose head is r. actKeep:
// buffer the body as usual; actDefer: the body is streamed, the head is
// consumed, the response deferred; actError: refused.
func (srv *Server) askStream(s *connState, r *Request, out []byte, c *loop.Conn) ([]byte, action) {
	ctx := &srv.ctx
	ctx.reset()
	ctx.conn, ctx.st = c, s
	fn := srv.streamer.StreamBody(ctx)
	if fn == nil {
		if ctx.deferred != nil {
			// Deferred but not streaming: Serve will be called once the
			// body is in; start that over.
			ctx.deferred.cancel()
			ctx.deferred = nil
		}
		return out, actKeep
	}
	if r.ContentLength > maxStreamBody {
		return srv.appendError(out, c, r, ErrBodyTooLarge), actError
	}
	if ctx.deferred == nil {
		ctx.Defer() // a streaming handler answers later: make it so
	}
	out = s.continue100(out, r)
	s.begin(r)
	s.flags |= sStream | sAsked
	if r.Flags&FlagChunked != 0 {
		s.state, s.n, s.decoded, s.scan = stChunkSize, 0, 0, 0
	} else {
		s.state, s.n = stStreamCL, uint32(r.ContentLength)
	}
	if srv.streams == nil {
		srv.streams = map[*connState]BodyFunc{}
	}
	srv.streams[s] = fn
	return out, actDefer
}

// streamBody hands the body in flight to its BodyFunc.
func (srv *Server) streamBody(s *connState, in []byte, pos int, c *loop.Conn) (int, bool, *Error) {
	fn := srv.streams[s]
	if s.state == stStreamCL {
		k := min(s.n, uint32(len(in)-pos))
		if k > 0 {
			fn(in[pos:pos+int(k)], nil)
		}
		pos += int(k)
		if s.n -= k; s.n > 0 {
			return pos, false, nil
		}
	} else {
		end, done, err := s.chunkedTo(in, pos, maxStreamBody, fn)
		if err != nil {
			srv.endStream(s, err)
			return end, false, err
		}
		if !done {
			return end, false, nil
		}
		pos = end
	}
	srv.endStream(s, io.EOF)
	return pos, true, nil
}

// endStream ends the body in flight with err (io.EOF: complete).
func (srv *Server) endStream(s *connState, err error) {
	fn := srv.streams[s]
	delete(srv.streams, s)
	s.flags &^= sStream | sAsked
	s.state = stHead
	if fn != nil {
		fn(nil, err)
	}
}
