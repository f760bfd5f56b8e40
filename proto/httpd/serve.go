package httpd

import "github.com/prefork/prefork/loop"

// state is where a connection is in its input: between requests or in a
// head (stHead), or in a body.
type state uint8

const (
	stHead          state = iota // expecting a request head, or waiting for its Content-Length body
	stChunkSize                  // chunk-size hex digits; n is the size so far
	stChunkBWS                   // whitespace after the size or an extension's value: only ';' may follow
	stExtStart                   // after ';': whitespace, then an extension name
	stExtName                    // in an extension name
	stExtNameBWS                 // whitespace after an extension name: '=' or ';' may follow
	stExtValueStart              // after '=': whitespace, then a token or a quoted-string
	stExtToken                   // in a token value
	stExtQuoted                  // in a quoted-string value
	stExtQuotedPair              // after a backslash in a quoted-string
	stExtQuotedEnd               // after the closing quote
	stChunkSizeLF                // the CR ending a chunk-size line was seen
	stChunkData                  // chunk data: n bytes left
	stChunkDataCR                // expecting the CR after chunk data
	stChunkDataLF                // expecting the LF after chunk data
	stTrailerStart               // start of a trailer line or of the final CRLF; n counts trailer bytes
	stTrailerName                // in a trailer field name
	stTrailerValue               // in a trailer field value
	stTrailerLF                  // the CR ending a trailer line was seen
	stEndLF                      // the CR of the final empty line was seen
	stStreamCL                   // a streamed Content-Length body: n bytes left
)

type sflags uint16

const (
	sHead      sflags = 1 << iota // the request in flight is HEAD
	sDigit                        // the chunk size being read has a digit
	sPartial                      // an incomplete request (head or body) is buffered (in the loop's input)
	sDrain                        // the server is draining: close after the request in flight
	sServed                       // at least one response was written (a keep-alive connection)
	sContinued                    // "100 Continue" was sent for the request in flight
	sDeferred                     // responses are owed behind a deferred one (Server.waiting)
	sAsked                        // BodyStreamer.StreamBody was asked about the request in flight
	sStream                       // the body in flight goes to a BodyFunc (Server.streams)
	sHeadClock                    // the loop's header clock runs (Conn.BeginHead) for the head in flight
)

// connState is one connection's protocol state, a few words, so an idle
// connection costs almost nothing beyond the loop's Conn.
type connState struct {
	n       uint32 // chunk bytes left, chunk size so far, or trailer bytes seen
	decoded uint32 // chunk data bytes announced so far (at most MaxBody, under 1 GiB)
	scan    uint32 // bytes of the chunked body in flight already checked
	flags   sflags
	state   state
	resp    conn // the Connection header of the response owed to the request in flight
}

// action is what the connection does after serve returns.
type action uint8

const (
	actKeep     action = iota // keep reading
	actClose                  // a "Connection: close" response was written: close after the flush
	actShutdown               // draining, and the request in flight was answered: close
	actError                  // an error response was written: close lingering
	actDefer                  // the handler deferred the last request's response
	actHold                   // MaxInflight deferred responses are in flight: the next request waits
)

// idle reports whether the connection is a keep-alive connection between
// requests with nothing buffered, so a drain may close it at once. A
// connection that has not sent its first request yet is not idle: its client
// connected to send one, and closing it now would fail that request (nginx
// makes the same distinction); it gets its response with "Connection: close".
func (s *connState) idle() bool {
	return s.state == stHead && s.flags&(sPartial|sServed|sDeferred) == sServed
}

// serve handles the input in: request heads and bodies, pipelined requests
// in order. A request is served once it has arrived whole: its head, and its
// body up to srv.maxBody, are left unconsumed in the loop's input until then
// (the chunked framing already checked is not checked again). For each
// request it calls srv's handler and appends the response to out. It returns
// how many bytes of in it consumed, the extended out, what the connection
// should do next and how many final responses it wrote. Unconsumed bytes are
// an incomplete request: the caller passes them again, followed by new
// input. c is the connection (nil in tests of the parser alone).
func (s *connState) serve(in, out []byte, srv *Server, c *loop.Conn) (consumed int, _ []byte, act action, nresp int) {
	consumed, out, act, nresp = s.serveInput(in, out, srv, c)
	if nresp > 0 {
		s.flags |= sServed
	}
	return consumed, out, act, nresp
}

func (s *connState) serveInput(in, out []byte, srv *Server, c *loop.Conn) (consumed int, _ []byte, act action, nresp int) {
	pos := 0
	for {
		// Empty lines between requests (some clients send a CRLF after a
		// body) are consumed here, so they leave the connection idle.
		for pos+1 < len(in) && in[pos] == '\r' && in[pos+1] == '\n' {
			pos += 2
		}
		if pos == len(in) {
			s.flags &^= sPartial
			return pos, out, actKeep, nresp
		}
		if s.flags&sStream != 0 {
			var err *Error
			var done bool
			pos, done, err = srv.streamBody(s, in, pos, c)
			if err != nil {
				out = srv.appendError(out, c, &srv.ctx.req, err)
				return len(in), out, actError, nresp + 1
			}
			if !done {
				return pos, out, actKeep, nresp
			}
			continue
		}
		// Parsed straight into the handler's context: no copy per request.
		r := &srv.ctx.req
		n, err := ParseRequest(in[pos:], r)
		if err != nil {
			if err == ErrIncomplete {
				s.flags |= sPartial
				if c != nil && s.flags&sHeadClock == 0 {
					// --header-timeout runs from here: the head's first bytes.
					s.flags |= sHeadClock
					c.BeginHead()
				}
				return pos, out, actKeep, nresp
			}
			e, ok := err.(*Error)
			if !ok {
				e = ErrBadRequestLine
			}
			out = srv.appendError(out, c, r, e)
			return len(in), out, actError, nresp + 1
		}
		if s.flags&sHeadClock != 0 {
			s.flags &^= sHeadClock
			c.EndHead()
		}
		if r.Flags&flagBadExpect != 0 {
			// RFC 9110 §10.1.1: an expectation the server cannot meet.
			out = srv.appendError(out, c, r, ErrExpectation)
			return len(in), out, actError, nresp + 1
		}
		if srv.streamer != nil && r.HasBody() && s.flags&sAsked == 0 {
			s.flags |= sAsked
			if out, act = srv.askStream(s, r, out, c); act != actKeep {
				return pos + n, out, act, nresp
			}
		}
		rest := in[pos+n:]
		var body []byte
		total := n
		switch {
		case r.Flags&FlagChunked != 0:
			if s.state == stHead {
				s.state, s.n, s.decoded, s.scan = stChunkSize, 0, 0, 0
			}
			end, done, err := s.chunked(rest, int(s.scan), srv.maxBody)
			if err == nil && end > int(srv.maxBody)+chunkSlack {
				err = ErrBodyTooLarge
			}
			if err != nil {
				s.state = stHead
				out = srv.appendError(out, c, r, err)
				return len(in), out, actError, nresp + 1
			}
			if !done {
				s.scan = uint32(end)
				out = s.continue100(out, r)
				s.flags |= sPartial
				return pos, out, actKeep, nresp
			}
			s.state, s.scan = stHead, 0
			srv.chunked = decodeChunked(srv.chunked[:0], rest[:end])
			body = srv.chunked
			total += end
		case r.ContentLength > srv.maxBody:
			// Refused before the client sends it: no 100 Continue.
			out = srv.appendError(out, c, r, ErrBodyTooLarge)
			return len(in), out, actError, nresp + 1
		case r.ContentLength > 0:
			if int64(len(rest)) < r.ContentLength {
				out = s.continue100(out, r)
				s.flags |= sPartial
				return pos, out, actKeep, nresp
			}
			body = rest[:r.ContentLength]
			total += int(r.ContentLength)
		}
		if srv.maxInflight > 0 && srv.deferredNow >= srv.maxInflight {
			// Not idle: a drain must answer it, not close it.
			s.flags |= sPartial
			return pos, out, actHold, nresp
		}
		out = s.continue100(out, r)
		pos += total
		s.begin(r)
		out, act = srv.respond(s, body, out, c)
		if act == actDefer {
			return pos, out, act, nresp
		}
		nresp++
		if act != actKeep {
			return pos, out, act, nresp
		}
		if len(out) > srv.room && pos < len(in) && c != nil {
			// The output is at the connection's high-water mark: the
			// requests pipelined behind wait in the loop's input, so one
			// client's burst of cheap requests cannot pile up answers
			// without bound; the loop delivers them again once it may.
			c.Yield()
			return pos, out, actKeep, nresp
		}
	}
}

// continue100 sends "100 Continue" once per request to a client that asked
// for it before sending a body it will send. It is sent even when the body
// has already arrived, so the output does not depend on how input is split.
func (s *connState) continue100(out []byte, r *Request) []byte {
	if r.Flags&FlagExpectContinue != 0 && r.Minor >= 1 && r.HasBody() && s.flags&sContinued == 0 {
		s.flags |= sContinued
		out = append(out, continue100...)
	}
	return out
}

// begin records what the response to r will be.
func (s *connState) begin(r *Request) {
	s.flags &^= sHead | sPartial | sDigit | sContinued | sAsked
	if r.Flags&FlagHEAD != 0 {
		s.flags |= sHead
	}
	switch {
	case !r.KeepAlive():
		s.resp = connClose
	case r.Minor == 0:
		s.resp = connKeepAlive
	default:
		s.resp = connNone
	}
}

// connAction is the Connection header of the response owed now, and what the
// connection does after it.
func (s *connState) connAction() (conn, action) {
	switch c := s.resp; {
	case s.flags&sDrain != 0:
		return connClose, actShutdown
	case c == connClose:
		return c, actClose
	default:
		return c, actKeep
	}
}

// chunkExt takes byte c of a chunk extension,
//
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-name = token
//	chunk-ext-val  = token / quoted-string
//
// and reports whether it may come there. A bare ';', a name that is not a
// token ("bad[") and whitespace before the CR are refused.
func (s *connState) chunkExt(c byte) bool {
	ws := c == ' ' || c == '\t'
	switch s.state {
	case stExtStart, stExtValueStart:
		switch {
		case ws:
		case tchar[c]:
			if s.state == stExtStart {
				s.state = stExtName
			} else {
				s.state = stExtToken
			}
		case c == '"' && s.state == stExtValueStart:
			s.state = stExtQuoted
		default:
			return false
		}
	case stExtName, stExtNameBWS:
		switch {
		case tchar[c] && s.state == stExtName:
		case ws:
			s.state = stExtNameBWS
		case c == '=':
			s.state = stExtValueStart
		case c == ';':
			s.state = stExtStart
		case c == '\r' && s.state == stExtName:
			s.state = stChunkSizeLF
		default:
			return false
		}
	case stExtToken, stExtQuotedEnd:
		switch {
		case tchar[c] && s.state == stExtToken:
		case ws:
			s.state = stChunkBWS
		case c == ';':
			s.state = stExtStart
		case c == '\r':
			s.state = stChunkSizeLF
		default:
			return false
		}
	case stExtQuoted:
		switch {
		case c == '"':
			s.state = stExtQuotedEnd
		case c == '\\':
			s.state = stExtQuotedPair
		case !valueOK[c]:
			return false
		}
	case stExtQuotedPair:
		if !valueOK[c] {
			return false
		}
		s.state = stExtQuoted
	}
	return true
}

// decodeChunked appends the data of a chunked body whose framing chunked has
// checked.
func decodeChunked(dst, raw []byte) []byte {
	for {
		var size uint64
		i := 0
		for ; hexVal[raw[i]] >= 0; i++ {
			size = size<<4 | uint64(hexVal[raw[i]])
		}
		for raw[i] != '\n' {
			i++
		}
		raw = raw[i+1:]
		if size == 0 {
			return dst // the trailer section is ignored
		}
		dst = append(dst, raw[:size]...)
		raw = raw[size+2:]
	}
}

// chunked runs the chunked-body checker over in[pos:], skipping chunk data
// in bulk and checking framing bytes one at a time. It returns the new
// position and whether the body (with its trailer section) ended there. The
// chunk sizes announced may add up to maxBody.
func (s *connState) chunked(in []byte, pos int, maxBody int64) (int, bool, *Error) {
	return s.chunkedTo(in, pos, maxBody, nil)
}

// chunkedTo is chunked, handing chunk data to deliver when it is not nil.
func (s *connState) chunkedTo(in []byte, pos int, maxBody int64, deliver BodyFunc) (int, bool, *Error) {
	for pos < len(in) {
		if s.state == stChunkData {
			k := min(s.n, uint32(len(in)-pos))
			if deliver != nil && k > 0 {
				deliver(in[pos:pos+int(k)], nil)
			}
			pos += int(k)
			s.n -= k
			if s.n > 0 {
				return pos, false, nil
			}
			s.state = stChunkDataCR
			continue
		}
		c := in[pos]
		pos++
		switch s.state {
		case stChunkSize:
			if v := hexVal[c]; v >= 0 {
				// A chunk larger than the body may be is refused as soon as
				// its size says so (which also keeps the size from overflowing).
				if uint64(s.n)<<4|uint64(v) > uint64(maxBody) {
					return pos, false, ErrBodyTooLarge
				}
				s.n = s.n<<4 | uint32(v)
				s.flags |= sDigit
				continue
			}
			if s.flags&sDigit == 0 {
				return pos, false, ErrBadChunk
			}
			switch c {
			case ' ', '\t':
				s.state = stChunkBWS
			case ';':
				s.state = stExtStart
			case '\r':
				s.state = stChunkSizeLF
			default:
				return pos, false, ErrBadChunk
			}
		case stChunkBWS:
			switch c {
			case ' ', '\t':
			case ';':
				s.state = stExtStart
			default:
				return pos, false, ErrBadChunk
			}
		case stExtStart, stExtName, stExtNameBWS, stExtValueStart, stExtToken,
			stExtQuoted, stExtQuotedPair, stExtQuotedEnd:
			// Extensions are ignored, but must be what RFC 9112 §7.1.1
			// says, so that no two parsers can split the line differently.
			if !s.chunkExt(c) {
				return pos, false, ErrBadChunk
			}
		case stChunkSizeLF:
			if c != '\n' {
				return pos, false, ErrBadChunk
			}
			s.flags &^= sDigit
			if s.n == 0 {
				s.state = stTrailerStart // last-chunk; s.n now counts trailer bytes
			} else {
				if uint64(s.decoded)+uint64(s.n) > uint64(maxBody) {
					return pos, false, ErrBodyTooLarge
				}
				s.decoded += s.n
				s.state = stChunkData
			}
		case stChunkDataCR:
			if c != '\r' {
				return pos, false, ErrBadChunk
			}
			s.state = stChunkDataLF
		case stChunkDataLF:
			if c != '\n' {
				return pos, false, ErrBadChunk
			}
			s.state, s.n = stChunkSize, 0
		default:
			// The trailer section: field lines, then an empty line. Fields
			// are checked like header fields and discarded.
			if s.n++; s.n > MaxHeadSize {
				return pos, false, ErrTrailerTooLarge
			}
			switch s.state {
			case stTrailerStart:
				switch {
				case c == '\r':
					s.state = stEndLF
				case tchar[c]:
					s.state = stTrailerName
				default:
					return pos, false, ErrBadChunk
				}
			case stTrailerName:
				switch {
				case c == ':':
					s.state = stTrailerValue
				case !tchar[c]:
					return pos, false, ErrBadChunk
				}
			case stTrailerValue:
				switch {
				case c == '\r':
					s.state = stTrailerLF
				case !valueOK[c]:
					return pos, false, ErrBadChunk
				}
			case stTrailerLF:
				if c != '\n' {
					return pos, false, ErrBadChunk
				}
				s.state = stTrailerStart
			case stEndLF:
				if c != '\n' {
					return pos, false, ErrBadChunk
				}
				return pos, true, nil
			}
		}
	}
	return pos, false, nil
}
