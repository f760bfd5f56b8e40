package httpd

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// MaxHeadSize bounds a request head: the request line, the header fields and
// the empty line that ends them, CRLFs included. A longer head is answered
// with 431. The same bound applies to the trailer section of a chunked body.
const MaxHeadSize = 8 << 10

// ErrIncomplete is returned by ParseRequest when the input ends before the
// request head does and the head may still turn out valid: the caller should
// wait for more input and parse again from the same start.
var ErrIncomplete = errors.New("http: incomplete request head")

// Error is a request the server rejects. Status is the HTTP status the
// response carries (400, 413, 431, 501 or 505); the connection is closed
// after it.
type Error struct {
	Status int
	Reason string
}

// Error returns the reason, prefixed with "http: ".
func (e *Error) Error() string { return "http: " + e.Reason }

// The rejections ParseRequest and the body decoder report. Compare with ==
// or errors.Is; read the status with errors.As and (*Error).Status.
var (
	ErrHeadTooLarge        = &Error{431, "request head larger than 8 KiB"}
	ErrBadRequestLine      = &Error{400, "malformed request line"}
	ErrBadMethod           = &Error{400, "method is not a token"}
	ErrBadTarget           = &Error{400, "malformed request target"}
	ErrBadVersion          = &Error{400, "malformed HTTP version"}
	ErrVersionNotSupported = &Error{505, "HTTP version other than 1.x"}
	ErrBareLF              = &Error{400, "line ends with LF but no CR"}
	ErrBareCR              = &Error{400, "CR not followed by LF"}
	ErrObsFold             = &Error{400, "obsolete line folding"}
	ErrBadHeaderName       = &Error{400, "header name is not a token"}
	ErrSpaceBeforeColon    = &Error{400, "whitespace between header name and colon"}
	ErrMissingColon        = &Error{400, "header line without a colon"}
	ErrBadHeaderValue      = &Error{400, "control character in header value"}
	ErrMissingHost         = &Error{400, "HTTP/1.1 request without Host"}
	ErrDuplicateHost       = &Error{400, "more than one Host header"}
	ErrBadContentLength    = &Error{400, "malformed Content-Length"}
	ErrConflictingLength   = &Error{400, "Content-Length values differ"}
	ErrLengthAndChunked    = &Error{400, "both Content-Length and Transfer-Encoding"}
	ErrTEInHTTP10          = &Error{400, "Transfer-Encoding in an HTTP/1.0 request"}
	ErrUnsupportedTE       = &Error{501, "Transfer-Encoding other than chunked"}
	ErrBadChunk            = &Error{400, "malformed chunked body"}
	ErrTrailerTooLarge     = &Error{431, "trailer section larger than 8 KiB"}
	ErrBodyTooLarge        = &Error{413, "request body larger than the server's limit"}
)

// Flags are the facts about a request the server acts on.
type Flags uint16

// Request flags.
const (
	FlagHEAD           Flags = 1 << iota // method is HEAD: answer without a body
	FlagHost                             // a Host header was present
	FlagContentLength                    // a Content-Length header was present
	FlagChunked                          // Transfer-Encoding: chunked
	FlagConnClose                        // Connection has the "close" token
	FlagConnKeepAlive                    // Connection has the "keep-alive" token
	FlagExpectContinue                   // Expect: 100-continue
	flagTE                               // a Transfer-Encoding header was seen
	flagBadTE                            // ... and it is not exactly "chunked"
)

// Request is a parsed request head. The byte slices alias the parsed buffer
// and are valid only as long as it is; ParseRequest never allocates.
type Request struct {
	Method []byte // as sent; methods are case-sensitive
	Target []byte // request-target as sent: "/", "/a?b", "*", "http://h/p"
	Host   []byte // Host field value (OWS trimmed); nil when absent
	// Fields is the header section as sent, every field line with its CRLF
	// (without the request line and the final empty line); Ctx.Header and
	// Ctx.VisitHeaders read it.
	Fields        []byte
	ContentLength int64 // body length when FlagContentLength is set, else 0
	Minor         uint8 // the x in HTTP/1.x
	Flags         Flags
}

// KeepAlive reports whether the connection may stay open after the response:
// HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
// "Connection: keep-alive".
func (r *Request) KeepAlive() bool {
	if r.Flags&FlagConnClose != 0 {
		return false
	}
	return r.Minor >= 1 || r.Flags&FlagConnKeepAlive != 0
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool {
	return r.Flags&FlagChunked != 0 || r.ContentLength > 0
}

// Character classes, indexed by byte. They are built by a variable
// initializer, not init, so that package-level variables built from them
// (prepared Fields) see them filled.
type charClasses struct {
	tchar   [256]bool  // token characters (RFC 9110 §5.6.2)
	tchar8  [256]uint8 // tchar as 0 or 1, for tokenEnd
	valueOK [256]bool  // field-value characters: HTAB, SP, VCHAR, obs-text
	hexVal  [256]int8  // hex digit value, -1 for other bytes
}

var classes = buildClasses()

var (
	tchar   = &classes.tchar
	tchar8  = &classes.tchar8
	valueOK = &classes.valueOK
	hexVal  = &classes.hexVal
)

func buildClasses() *charClasses {
	cc := &charClasses{}
	for c := 0; c < 256; c++ {
		cc.hexVal[c] = -1
		switch {
		case c >= '0' && c <= '9':
			cc.hexVal[c] = int8(c - '0')
			cc.tchar[c] = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			cc.tchar[c] = true
			if c|0x20 <= 'f' {
				cc.hexVal[c] = int8(c|0x20-'a') + 10
			}
		}
		cc.valueOK[c] = c == '\t' || (c >= 0x20 && c != 0x7f)
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		cc.tchar[c] = true
	}
	for c, ok := range cc.tchar {
		if ok {
			cc.tchar8[c] = 1
		}
	}
	return cc
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// ctlMask flags, in the high bit of each byte, the bytes of x below lo
// (lo <= 128) or equal to DEL; bytes >= 0x80 are never flagged. Only the
// lowest flag is exact (a borrow may flag bytes above it), which is all the
// scanners use.
func ctlMask(x, lo uint64) uint64 {
	y := x ^ (ones * 0x7f)
	return ((x-ones*lo)&^x | (y-ones)&^y) & highs
}

// valueEnd returns the index of the first byte at or after i that may not
// appear in a field value (the CR ending it, normally), or len(b). It checks
// eight bytes at a time.
func valueEnd(b []byte, i int) int {
	for i+8 <= len(b) {
		m := ctlMask(binary.LittleEndian.Uint64(b[i:]), 0x20)
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) >> 3
		if b[i] != '\t' {
			return i
		}
		i++
	}
	for i < len(b) && valueOK[b[i]] {
		i++
	}
	return i
}

// tokenEnd returns the index of the first byte at or after i that is not a
// token character, or len(b). Eight table lookups are AND-ed per step, so a
// header name costs one branch per eight bytes.
func tokenEnd(b []byte, i int) int {
	for i+8 <= len(b) {
		c := b[i : i+8 : i+8]
		if tchar8[c[0]]&tchar8[c[1]]&tchar8[c[2]]&tchar8[c[3]]&
			tchar8[c[4]]&tchar8[c[5]]&tchar8[c[6]]&tchar8[c[7]] == 0 {
			break
		}
		i += 8
	}
	for i < len(b) && tchar[b[i]] {
		i++
	}
	return i
}

// targetEnd returns the index of the first byte at or after i that may not
// appear in a request-target (the SP after it, normally), or len(b). Bytes
// >= 0x80 are tolerated, as nginx does; controls, SP and DEL are not.
func targetEnd(b []byte, i int) int {
	for i+8 <= len(b) {
		m := ctlMask(binary.LittleEndian.Uint64(b[i:]), 0x21)
		if m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(b) && b[i] > 0x20 && b[i] != 0x7f {
		i++
	}
	return i
}

// ParseRequest parses the request head at the start of b into r. It returns
// the head's length (request line, fields and the final CRLF) when the head
// is complete and valid, ErrIncomplete when b ends too early to tell, or an
// *Error. Lines end with CRLF; a bare LF or bare CR is an error. Empty lines
// before the request line are skipped (RFC 9112 §2.2) and counted in n.
// Decisions are made left to right, so a prefix of b gives either
// ErrIncomplete or the same result as b.
func ParseRequest(b []byte, r *Request) (n int, err error) {
	*r = Request{}
	w := b
	if len(w) > MaxHeadSize {
		w = w[:MaxHeadSize]
	}
	i := 0
	for i+1 < len(w) && w[i] == '\r' && w[i+1] == '\n' {
		i += 2
	}
	if i+1 == len(w) && w[i] == '\r' {
		return more(b)
	}

	// Method.
	start := i
	for i < len(w) && tchar[w[i]] {
		i++
	}
	if i == len(w) {
		return more(b)
	}
	if c := w[i]; c != ' ' || i == start {
		if c == ' ' || c == '\r' || c == '\n' {
			return 0, ErrBadRequestLine // "GET\r\n", " / HTTP/1.1", "\r\r"
		}
		return 0, ErrBadMethod
	}
	r.Method = w[start:i]
	if i-start == 4 && string(r.Method) == "HEAD" {
		r.Flags |= FlagHEAD
	}
	i++

	// Request-target.
	start = i
	i = targetEnd(w, i)
	if i == len(w) {
		return more(b)
	}
	if w[i] != ' ' || i == start {
		if i == start || w[i] == '\r' || w[i] == '\n' {
			return 0, ErrBadRequestLine
		}
		return 0, ErrBadTarget
	}
	r.Target = w[start:i]
	i++

	// HTTP-version CRLF: "HTTP/" DIGIT "." DIGIT CRLF.
	if len(w)-i >= 10 && string(w[i:i+10]) == "HTTP/1.1\r\n" {
		r.Minor = 1
		i += 10
	} else {
		const pattern = "HTTP/#.#\r\n"
		v := w[i:]
		for k := 0; k < len(pattern); k++ {
			if k == len(v) {
				return more(b)
			}
			c := v[k]
			switch p := pattern[k]; {
			case p == '#':
				if c < '0' || c > '9' {
					return 0, ErrBadVersion
				}
			case k == 9: // v[8] was the CR
				if c != '\n' {
					return 0, ErrBareCR
				}
			case c != p:
				if k == 8 && c == '\n' {
					return 0, ErrBareLF
				}
				return 0, ErrBadVersion
			}
		}
		if v[5] != '1' {
			return 0, ErrVersionNotSupported
		}
		r.Minor = v[7] - '0'
		i += len(pattern)
	}

	// Header fields, until the empty line.
	fields := i
	for {
		if i == len(w) {
			return more(b)
		}
		switch w[i] {
		case '\r':
			if i+1 == len(w) {
				return more(b)
			}
			if w[i+1] != '\n' {
				return 0, ErrBareCR
			}
			if err := r.finish(); err != nil {
				return 0, err
			}
			r.Fields = w[fields:i]
			return i + 2, nil
		case '\n':
			return 0, ErrBareLF
		case ' ', '\t':
			return 0, ErrObsFold
		}
		start = i
		i = tokenEnd(w, i)
		if i == len(w) {
			return more(b)
		}
		if w[i] != ':' {
			switch {
			case i == start:
				return 0, ErrBadHeaderName
			case w[i] == ' ' || w[i] == '\t':
				return 0, ErrSpaceBeforeColon
			case w[i] == '\r' || w[i] == '\n':
				return 0, ErrMissingColon
			}
			return 0, ErrBadHeaderName
		}
		if i == start {
			return 0, ErrBadHeaderName
		}
		name := w[start:i]
		i++
		for i < len(w) && (w[i] == ' ' || w[i] == '\t') {
			i++
		}
		vs := i
		i = valueEnd(w, i)
		if i == len(w) {
			return more(b)
		}
		if w[i] != '\r' {
			if w[i] == '\n' {
				return 0, ErrBareLF
			}
			return 0, ErrBadHeaderValue
		}
		if i+1 == len(w) {
			return more(b)
		}
		if w[i+1] != '\n' {
			return 0, ErrBareCR
		}
		ve := i
		for ve > vs && (w[ve-1] == ' ' || w[ve-1] == '\t') {
			ve--
		}
		i += 2
		if err := r.field(name, w[vs:ve]); err != nil {
			return 0, err
		}
	}
}

// more is the answer when the window ran out: the head may still complete if
// b is shorter than the limit; otherwise it is too large.
func more(b []byte) (int, error) {
	if len(b) >= MaxHeadSize {
		return 0, ErrHeadTooLarge
	}
	return 0, ErrIncomplete
}

// field records a header field the server acts on and ignores the others.
// Names are matched by length first, then ASCII case folding.
func (r *Request) field(name, value []byte) error {
	switch len(name) {
	case 4:
		if !equalFold(name, "host") {
			return nil
		}
		if r.Flags&FlagHost != 0 {
			return ErrDuplicateHost
		}
		r.Flags |= FlagHost
		r.Host = value
	case 6:
		if equalFold(name, "expect") && equalFold(value, "100-continue") {
			r.Flags |= FlagExpectContinue
		}
	case 10:
		if equalFold(name, "connection") {
			r.connection(value)
		}
	case 14:
		if !equalFold(name, "content-length") {
			return nil
		}
		n, ok := parseLength(value)
		if !ok {
			return ErrBadContentLength
		}
		if r.Flags&FlagContentLength != 0 && n != r.ContentLength {
			return ErrConflictingLength
		}
		r.Flags |= FlagContentLength
		r.ContentLength = n
	case 17:
		if !equalFold(name, "transfer-encoding") {
			return nil
		}
		// A second Transfer-Encoding field makes the combined value a list,
		// which is no longer exactly "chunked".
		if r.Flags&flagTE != 0 || !equalFold(value, "chunked") {
			r.Flags |= flagBadTE
		}
		r.Flags |= flagTE | FlagChunked
	}
	return nil
}

// finish applies the checks that need the whole head.
func (r *Request) finish() error {
	if r.Minor >= 1 && r.Flags&FlagHost == 0 {
		return ErrMissingHost
	}
	if r.Flags&flagTE != 0 {
		switch {
		case r.Minor == 0:
			return ErrTEInHTTP10
		case r.Flags&FlagContentLength != 0:
			return ErrLengthAndChunked
		case r.Flags&flagBadTE != 0:
			return ErrUnsupportedTE
		}
	}
	return nil
}

// connection records the close and keep-alive tokens of a Connection value.
func (r *Request) connection(v []byte) {
	for len(v) > 0 {
		end := 0
		for end < len(v) && v[end] != ',' {
			end++
		}
		tok := trimOWS(v[:end])
		switch {
		case len(tok) == 5 && equalFold(tok, "close"):
			r.Flags |= FlagConnClose
		case len(tok) == 10 && equalFold(tok, "keep-alive"):
			r.Flags |= FlagConnKeepAlive
		}
		if end == len(v) {
			break
		}
		v = v[end+1:]
	}
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFold reports whether b equals lower, ignoring ASCII case in b. lower
// is lower-case letters, digits and '-'; b is a token or a field value, so it
// holds no control characters, and OR-ing 0x20 into a byte of b matches a
// byte of lower only when it is that byte or its upper-case letter.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: one or more digits, at most
// 2^63-1. Lists ("5, 5") and signs are refused.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
