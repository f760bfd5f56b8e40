package httpd

// state is where a connection is in its input: between requests or in a
// head (stHead), or in a body.
type state uint8

const (
	stHead         state = iota // expecting a request head
	stBody                      // Content-Length body: n bytes left
	stChunkSize                 // chunk-size hex digits; n is the size so far
	stChunkBWS                  // whitespace after the size, before ';'
	stChunkExt                  // a chunk extension, up to the CR
	stChunkSizeLF               // the CR ending a chunk-size line was seen
	stChunkData                 // chunk data: n bytes left
	stChunkDataCR               // expecting the CR after chunk data
	stChunkDataLF               // expecting the LF after chunk data
	stTrailerStart              // start of a trailer line or of the final CRLF; n counts trailer bytes
	stTrailerName               // in a trailer field name
	stTrailerValue              // in a trailer field value
	stTrailerLF                 // the CR ending a trailer line was seen
	stEndLF                     // the CR of the final empty line was seen
)

// maxChunkSize bounds one chunk's size, so the size never overflows.
const maxChunkSize = 1<<60 - 1

type sflags uint8

const (
	sHead    sflags = 1 << iota // the request in flight is HEAD
	sDigit                      // the chunk size being read has a digit
	sPartial                    // an incomplete request head is buffered (in the loop's input)
	sDrain                      // the server is draining: close after the request in flight
	sServed                     // at least one response was written (a keep-alive connection)
)

// connState is one connection's protocol state: 16 bytes, so an idle
// connection costs almost nothing beyond the loop's Conn.
type connState struct {
	n     uint64 // body or chunk bytes left, chunk size so far, or trailer bytes seen
	state state
	flags sflags
	resp  conn // the Connection header of the response owed to the request in flight
}

// action is what the connection does after serve returns.
type action uint8

const (
	actKeep     action = iota // keep reading
	actClose                  // a "Connection: close" response was written: close after the flush
	actShutdown               // draining, and the request in flight was answered: close
	actError                  // an error response was written: close lingering
)

// idle reports whether the connection is a keep-alive connection between
// requests with nothing buffered, so a drain may close it at once. A
// connection that has not sent its first request yet is not idle: its client
// connected to send one, and closing it now would fail that request (nginx
// makes the same distinction); it gets its response with "Connection: close".
func (s *connState) idle() bool {
	return s.state == stHead && s.flags&(sPartial|sServed) == sServed
}

// serve handles the input in: request heads, bodies (read and discarded as
// they arrive) and pipelined requests, in order. It appends the responses to
// out and returns how many bytes of in it consumed, the extended out, what the
// connection should do next and how many final responses it wrote. Unconsumed
// bytes are a partial request head: the caller passes them again, followed by
// new input. serve is pure apart from s and never allocates beyond growing
// out.
func (s *connState) serve(in, out []byte, rs *responses) (consumed int, _ []byte, act action, nresp int) {
	consumed, out, act, nresp = s.serveInput(in, out, rs)
	if nresp > 0 {
		s.flags |= sServed
	}
	return consumed, out, act, nresp
}

func (s *connState) serveInput(in, out []byte, rs *responses) (consumed int, _ []byte, act action, nresp int) {
	pos := 0
	for {
		switch s.state {
		case stHead:
			// Empty lines between requests (some clients send a CRLF after
			// a body) are consumed here, so they leave the connection idle.
			for pos+1 < len(in) && in[pos] == '\r' && in[pos+1] == '\n' {
				pos += 2
			}
			if pos == len(in) {
				s.flags &^= sPartial
				return pos, out, actKeep, nresp
			}
			var r Request
			n, err := ParseRequest(in[pos:], &r)
			if err != nil {
				if err == ErrIncomplete {
					s.flags |= sPartial
					return pos, out, actKeep, nresp
				}
				e, ok := err.(*Error)
				if !ok {
					e = ErrBadRequestLine
				}
				out = rs.appendError(out, e, r.Flags&FlagHEAD != 0)
				return len(in), out, actError, nresp + 1
			}
			pos += n
			s.begin(&r)
			switch {
			case r.Flags&FlagChunked != 0:
				s.state, s.n = stChunkSize, 0
			case r.ContentLength > 0:
				s.state, s.n = stBody, uint64(r.ContentLength)
			default:
				out, act = s.respond(out, rs)
				nresp++
				if act != actKeep {
					return pos, out, act, nresp
				}
				continue
			}
			// A client that sent "Expect: 100-continue" waits for this before
			// sending the body. It is sent even when the body has already
			// arrived, so the output does not depend on how input is split.
			if r.Flags&FlagExpectContinue != 0 && r.Minor >= 1 {
				out = append(out, continue100...)
			}

		case stBody:
			k := min(s.n, uint64(len(in)-pos))
			pos += int(k)
			s.n -= k
			if s.n > 0 {
				return pos, out, actKeep, nresp
			}
			out, act = s.respond(out, rs)
			nresp++
			if act != actKeep {
				return pos, out, act, nresp
			}

		default:
			var done bool
			var err *Error
			pos, done, err = s.chunked(in, pos)
			if err != nil {
				out = rs.appendError(out, err, s.flags&sHead != 0)
				return len(in), out, actError, nresp + 1
			}
			if !done {
				return pos, out, actKeep, nresp
			}
			out, act = s.respond(out, rs)
			nresp++
			if act != actKeep {
				return pos, out, act, nresp
			}
		}
	}
}

// begin records what the response to r will be.
func (s *connState) begin(r *Request) {
	s.flags &^= sHead | sPartial | sDigit
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

// respond appends the 200 for the request in flight, whose input is now all
// consumed, and returns to stHead.
func (s *connState) respond(out []byte, rs *responses) ([]byte, action) {
	s.state = stHead
	c, act := s.resp, actKeep
	switch {
	case s.flags&sDrain != 0:
		c, act = connClose, actShutdown
	case c == connClose:
		act = actClose
	}
	return rs.appendOK(out, c, s.flags&sHead != 0), act
}

// chunked runs the chunked-body decoder over in[pos:], discarding chunk data
// in bulk and framing bytes one at a time. It returns the new position and
// whether the body (with its trailer section) ended there.
func (s *connState) chunked(in []byte, pos int) (int, bool, *Error) {
	for pos < len(in) {
		if s.state == stChunkData {
			k := min(s.n, uint64(len(in)-pos))
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
				if s.n > maxChunkSize>>4 {
					return pos, false, ErrBadChunk
				}
				s.n = s.n<<4 | uint64(v)
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
				s.state = stChunkExt
			case '\r':
				s.state = stChunkSizeLF
			default:
				return pos, false, ErrBadChunk
			}
		case stChunkBWS:
			switch c {
			case ' ', '\t':
			case ';':
				s.state = stChunkExt
			default:
				return pos, false, ErrBadChunk
			}
		case stChunkExt:
			// Extensions are ignored; only their bytes are checked, so a
			// bare CR or LF cannot end the line early (RFC 9112 §7.1.1).
			if c == '\r' {
				s.state = stChunkSizeLF
			} else if !valueOK[c] {
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
