package httpd

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
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
// response carries (400, 414, 431, 501 or 505 from ParseRequest; 413 and
// 417 from the server); the connection is closed after it.
type Error struct {
	Status int
	Reason string
}

// Error returns the reason, prefixed with "http: ".
func (e *Error) Error() string { return "http: " + e.Reason }

// The rejections ParseRequest and the body decoder report. Compare with ==
// or errors.Is; read the status with errors.As and (*Error).Status. The
// package documentation (Limits and errors) gives the RFC rule behind each.
var (
	ErrHeadTooLarge        = &Error{431, "request head larger than 8 KiB"}
	ErrURITooLong          = &Error{414, "request-target runs past the 8 KiB head limit"}
	ErrBadRequestLine      = &Error{400, "malformed request line"}
	ErrBadMethod           = &Error{400, "method is not a token"}
	ErrUnknownMethod       = &Error{501, "method not recognized"}
	ErrMethodTooLong       = &Error{501, "method longer than any recognized one"}
	ErrConnect             = &Error{501, "CONNECT: the server is not a proxy"}
	ErrBadTarget           = &Error{400, "malformed request target"}
	ErrTargetForm          = &Error{400, "request-target not in origin, absolute (http) or asterisk form"}
	ErrAsteriskForm        = &Error{400, "asterisk-form target with a method other than OPTIONS"}
	ErrBadVersion          = &Error{400, "malformed HTTP version"}
	ErrVersionNotSupported = &Error{505, "HTTP version other than 1.x"}
	ErrBareLF              = &Error{400, "line ends with LF but no CR"}
	ErrBareCR              = &Error{400, "CR not followed by LF"}
	ErrObsFold             = &Error{400, "obsolete line folding"}
	ErrSpaceBeforeField    = &Error{400, "whitespace between the request line and the first field"}
	ErrBadHeaderName       = &Error{400, "header name is not a token"}
	ErrSpaceBeforeColon    = &Error{400, "whitespace between header name and colon"}
	ErrMissingColon        = &Error{400, "header line without a colon"}
	ErrBadHeaderValue      = &Error{400, "control character in header value"}
	ErrMissingHost         = &Error{400, "HTTP/1.1 request without Host"}
	ErrDuplicateHost       = &Error{400, "more than one Host header"}
	ErrBadHost             = &Error{400, "Host is not host[:port]"}
	ErrBadContentLength    = &Error{400, "malformed Content-Length"}
	ErrConflictingLength   = &Error{400, "Content-Length values differ"}
	ErrLengthAndChunked    = &Error{400, "both Content-Length and Transfer-Encoding"}
	ErrTEInHTTP10          = &Error{400, "Transfer-Encoding in an HTTP/1.0 request"}
	ErrChunkedNotFinal     = &Error{400, "Transfer-Encoding whose final coding is not chunked"}
	ErrUnsupportedTE       = &Error{501, "transfer-coding other than chunked"}
	ErrExpectation         = &Error{417, "expectation other than 100-continue"}
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
	flagBadTE                            // ... malformed, or a coding after chunked: 400
	flagOtherTE                          // ... with a coding before chunked that is not implemented: 501
	flagBadExpect                        // an expectation other than 100-continue: the server answers 417
	flagAbsolute                         // the target is in absolute-form: its authority is the Host
)

// flagsRare are the flags that finish checks beyond the Host rule; none is
// set by a common request, so finish costs it one test.
const flagsRare = flagTE | flagAbsolute

// Request is a parsed request head. The byte slices alias the parsed buffer
// and are valid only as long as it is; ParseRequest never allocates.
type Request struct {
	Method []byte // as sent; methods are case-sensitive
	Target []byte // request-target as sent: "/", "/a?b", "*", "http://h/p"
	// Host is the Host field value (OWS trimmed), or the authority of an
	// absolute-form target ("h:8080" of "http://h:8080/p"), which RFC 9112
	// §3.2.2 says to use instead; nil for an HTTP/1.0 request without either.
	Host []byte
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
	// target8 is 1 for the bytes a request-target may hold as they are
	// (pchar, '/' and '?' of RFC 3986, plus the few that browsers send
	// unescaped: see targetMask), 0 for the others and for '%', which
	// must start an escape.
	target8  [256]uint8
	regName  [256]bool // reg-name characters of RFC 3986 §3.2.2 but ',' and '%'
	hostName [256]bool // letters, digits, '-' and '.': the names hostScan takes
}

var classes = buildClasses()

// The classes as package-level arrays, not pointers into classes: indexing
// one is then a load from a fixed address, with no pointer to reload and
// check for nil at every byte of a scan.
var (
	tchar    = classes.tchar
	tchar8   = classes.tchar8
	valueOK  = classes.valueOK
	hexVal   = classes.hexVal
	target8  = classes.target8
	regName  = classes.regName
	hostName = classes.hostName
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
		alnum := cc.hexVal[c] >= 0 || (c|0x20 >= 'a' && c|0x20 <= 'z')
		// unreserved and sub-delims but ','.
		cc.regName[c] = alnum || (c < 0x80 && strings.IndexByte("-._~!$&'()*+;=", byte(c)) >= 0)
		cc.hostName[c] = alnum || c == '-' || c == '.'
		// Visible ASCII but '"', '#', '%', '<' and '>'.
		if c > 0x20 && c < 0x7f && strings.IndexByte("\"#%<>", byte(c)) < 0 {
			cc.target8[c] = 1
		}
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

// targetMask flags, in the high bit of each byte, the bytes of x below
// 0x26 (controls, SP, '!', '"', '#', '$', '%'), '<', '>', DEL and those
// >= 0x80. Only the lowest flag is exact. The request-target scan in
// ParseRequest tests eight bytes at a time with it, and looks the first one
// flagged up in target8, so a '!' or '$' costs a step.
//
// A request-target may hold the bytes of target8 and %XX escapes. The
// bytes refused are those RFC 3986 excludes and no client sends unescaped:
// controls, SP, DEL, every byte >= 0x80 (so raw UTF-8, overlong forms
// included), '"', '<', '>' and '#' (a fragment is never sent). The others
// RFC 3986 excludes, '[', ']', '\', '^', '`', '{', '|' and '}', are
// accepted: browsers following the WHATWG URL Standard send them unescaped
// in paths and queries ("?a[]=1").
func targetMask(x uint64) uint64 {
	angle := (x | ones*2) ^ (ones * '>') // '<' or '>' become 0
	return ctlMask(x, 0x26) | (x|(angle-ones)&^angle)&highs
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

	// Method: a token no longer than the longest one recognized. "GET "
	// is taken in one comparison.
	start := i
	if len(w)-i >= 4 && binary.LittleEndian.Uint32(w[i:]) == 'G'|'E'<<8|'T'<<16|' '<<24 {
		r.Method = w[i : i+3]
		i += 4
	} else {
		lim := min(len(w), start+maxMethod+1)
		for i < lim && tchar[w[i]] {
			i++
		}
		if i-start > maxMethod {
			return 0, ErrMethodTooLong // RFC 9112 §3: 501, not a wait for 8 KiB
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
		if err := r.method(); err != nil {
			return 0, err
		}
		i++
	}

	// Request-target: the bytes of target8, and %XX escapes.
	start = i
	for {
		for i+8 <= len(w) {
			if m := targetMask(binary.LittleEndian.Uint64(w[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i+8 > len(w) {
			for i < len(w) && target8[w[i]] != 0 {
				i++
			}
		}
		if i == len(w) {
			return moreTarget(b)
		}
		if c := w[i]; c == ' ' {
			break
		} else if target8[c] != 0 {
			i++ // a '!' or '$' that targetMask flags
			continue
		} else if c != '%' {
			break
		}
		for k := 1; k <= 2; k++ {
			if i+k == len(w) {
				return moreTarget(b)
			}
			if hexVal[w[i+k]] < 0 {
				return 0, ErrBadTarget
			}
		}
		i += 3
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
	// After the version, so that an HTTP/2 preface ("PRI * HTTP/2.0") is
	// answered 505.
	if r.Target[0] != '/' {
		if err := r.targetForm(); err != nil {
			return 0, err
		}
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
			if i == fields {
				return 0, ErrSpaceBeforeField // RFC 9112 §2.2
			}
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
		if len(name) == 4 && equalFold(name, "host") {
			if i, err = r.hostField(b, w, i); err != nil {
				return 0, err
			}
			continue
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

// maxMethod is the length of the longest method recognized
// (UPDATEREDIRECTREF).
const maxMethod = 17

// method checks r.Method against the methods of the IANA HTTP Method
// Registry (RFC 9110 §16.1): another is answered 501 (RFC 9110 §9.1), and
// so is CONNECT, since the server is no proxy and opens no tunnels. Methods
// are case-sensitive, so "get" is not GET. Which registered methods a
// resource allows is the handler's to say (Router answers 405 with Allow).
func (r *Request) method() *Error {
	switch string(r.Method) {
	case "GET":
	case "HEAD":
		r.Flags |= FlagHEAD
	case "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
		"ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "COPY",
		"LABEL", "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL",
		"MKREDIRECTREF", "MKWORKSPACE", "MOVE", "ORDERPATCH", "PRI", "PROPFIND",
		"PROPPATCH", "REBIND", "REPORT", "SEARCH", "UNBIND", "UNCHECKOUT",
		"TRACE", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL":
	case "CONNECT":
		return ErrConnect
	default:
		return ErrUnknownMethod
	}
	return nil
}

// targetForm checks a request-target that is not in origin-form (RFC 9112
// §3.2): "*" only with OPTIONS, an absolute-form "http" URI with a valid
// authority and no userinfo, nothing else (authority-form is CONNECT's,
// which is refused before). Its bytes have been checked by the request-target scan.
func (r *Request) targetForm() *Error {
	t := r.Target
	if len(t) == 1 && t[0] == '*' {
		if string(r.Method) != "OPTIONS" {
			return ErrAsteriskForm
		}
		return nil
	}
	auth, ok := absoluteAuthority(t)
	if !ok {
		return ErrTargetForm
	}
	if !validHost(auth) {
		return ErrBadTarget // empty, userinfo ("user@h"), a bad port...
	}
	r.Flags |= flagAbsolute
	return nil
}

// absoluteAuthority returns the authority of an absolute-form target with
// the "http" scheme (any case), and whether t is one. Other schemes are not
// this server's to answer: "https" would need TLS (RFC 9110 §4.2.2), and
// the rest belong to proxies.
func absoluteAuthority(t []byte) ([]byte, bool) {
	const scheme = "http://"
	if len(t) < len(scheme) {
		return nil, false
	}
	for k := 0; k < len(scheme); k++ {
		c := t[k]
		if k < 4 {
			c |= 0x20
		}
		if c != scheme[k] {
			return nil, false
		}
	}
	t = t[len(scheme):]
	end := 0
	for end < len(t) && t[end] != '/' && t[end] != '?' {
		end++
	}
	return t[:end], true
}

// hostField parses the value of a Host field that starts at w[i], after
// the OWS, the same way as any field value (with the same errors), and
// checks it is host[:port]. It returns the index after the line's CRLF.
// The common value, a reg-name and an optional port right before the CR, is
// checked eight bytes at a time as it is scanned; anything else (an
// IP-literal, an escape, trailing OWS, an error, the end of the window) is
// scanned as any value and then checked by validHost. b is the input, w
// its first MaxHeadSize bytes.
func (r *Request) hostField(b, w []byte, i int) (int, error) {
	if r.Flags&FlagHost == 0 {
		if j, ok := hostScan(w, i); ok && j+1 < len(w) && w[j+1] == '\n' {
			r.Flags |= FlagHost
			r.Host = w[i:j]
			return j + 2, nil
		}
	}
	return r.hostFieldSlow(b, w, i)
}

// hostFieldSlow is hostField for a second Host field and the values
// hostScan leaves.
func (r *Request) hostFieldSlow(b, w []byte, i int) (int, error) {
	if r.Flags&FlagHost != 0 {
		return 0, ErrDuplicateHost // RFC 9112 §3.2
	}
	vs := i
	j := valueEnd(w, vs)
	if j == len(w) {
		return more(b)
	}
	if w[j] != '\r' {
		if w[j] == '\n' {
			return 0, ErrBareLF
		}
		return 0, ErrBadHeaderValue
	}
	ve := j
	for ve > vs && (w[ve-1] == ' ' || w[ve-1] == '\t') {
		ve--
	}
	if j+1 == len(w) {
		return more(b)
	}
	if w[j+1] != '\n' {
		return 0, ErrBareCR
	}
	if !validHost(w[vs:ve]) {
		return 0, ErrBadHost
	}
	r.Flags |= FlagHost
	r.Host = w[vs:ve]
	return j + 2, nil
}

// hostScan is hostField's fast path: it returns the index of the CR that
// ends the value at w[i:] and true when the value is a non-empty name of
// letters, digits, '-' and '.', then optionally ':' and digits; false
// leaves the value to the slow path (validHost).
func hostScan(w []byte, i int) (int, bool) {
	vs := i
	for i < len(w) && hostName[w[i]] {
		i++
	}
	if i == vs || i == len(w) {
		return 0, false
	}
	if w[i] == ':' {
		for i++; i < len(w) && w[i]-'0' <= 9; i++ {
		}
		if i == len(w) {
			return 0, false
		}
	}
	return i, w[i] == '\r'
}

// validHost reports whether h is uri-host [":" port] (RFC 9112 §3.2, RFC
// 3986 §3.2.2-3): an IP-literal in brackets or a non-empty reg-name, then
// an optional port of digits. A reg-name may not hold ',' here although
// RFC 3986 allows it: "a, b" is how two Host lines read once combined, and
// no DNS name or address has one. '@' (userinfo), '/' (a path), SP and
// bytes >= 0x80 are refused by the grammar.
func validHost(h []byte) bool {
	i := 0
	if len(h) > 0 && h[0] == '[' {
		j := 1
		for j < len(h) && h[j] != ']' {
			j++
		}
		if j == len(h) || !validIPLiteral(h[1:j]) {
			return false
		}
		i = j + 1
	} else {
		for i < len(h) {
			if regName[h[i]] {
				i++
				continue
			}
			if h[i] == '%' && i+2 < len(h) && hexVal[h[i+1]] >= 0 && hexVal[h[i+2]] >= 0 {
				i += 3
				continue
			}
			break
		}
		if i == 0 {
			return false // RFC 9110 §4.2.1: an http URI's host is never empty
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' {
		return false
	}
	for i++; i < len(h); i++ {
		if h[i]-'0' > 9 {
			return false
		}
	}
	return true
}

// validIPLiteral reports whether s, the inside of "[...]", is an
// IPv6address or an IPvFuture (RFC 3986 §3.2.2).
func validIPLiteral(s []byte) bool {
	if len(s) > 0 && s[0]|0x20 == 'v' {
		i := 1
		for i < len(s) && hexVal[s[i]] >= 0 {
			i++
		}
		if i == 1 || i == len(s) || s[i] != '.' || i+1 == len(s) {
			return false
		}
		for _, c := range s[i+1:] {
			if !regName[c] && c != ':' {
				return false
			}
		}
		return true
	}
	return validIPv6(s)
}

// validIPv6 reports whether s is an IPv6address (RFC 3986 §3.2.2): eight
// pieces of 1 to 4 hex digits separated by ':', or fewer with one "::"
// standing for at least one, the last two possibly an IPv4 address.
func validIPv6(s []byte) bool {
	pieces := 0
	double := false
	i := 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		double, i = true, 2
		if i == len(s) {
			return true
		}
	}
	for {
		j := i
		for j < len(s) && j-i < 5 && hexVal[s[j]] >= 0 {
			j++
		}
		if j < len(s) && s[j] == '.' {
			if !validIPv4(s[i:]) {
				return false
			}
			pieces += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		pieces++
		if j == len(s) {
			break
		}
		if s[j] != ':' {
			return false
		}
		j++
		if j < len(s) && s[j] == ':' {
			if double {
				return false
			}
			double = true
			j++
			if j == len(s) {
				break
			}
		} else if j == len(s) {
			return false // a trailing single ':'
		}
		i = j
	}
	if double {
		return pieces <= 7
	}
	return pieces == 8
}

// validIPv4 reports whether s is a dotted-decimal IPv4address: four
// dec-octets 0-255 without leading zeros.
func validIPv4(s []byte) bool {
	for part := 0; part < 4; part++ {
		if part > 0 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
		n, k := 0, 0
		for k < len(s) && k < 4 && s[k]-'0' <= 9 {
			n = n*10 + int(s[k]-'0')
			k++
		}
		if k == 0 || k > 3 || n > 255 || (k > 1 && s[0] == '0') {
			return false
		}
		s = s[k:]
	}
	return len(s) == 0
}

// moreTarget is more for a window that ran out inside the request-target:
// RFC 9112 §3 makes that a 414, not a 431.
func moreTarget(b []byte) (int, error) {
	if len(b) >= MaxHeadSize {
		return 0, ErrURITooLong
	}
	return 0, ErrIncomplete
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
// Names are matched by length first, then ASCII case folding. Host is
// hostField's.
func (r *Request) field(name, value []byte) error {
	switch len(name) {
	case 6:
		if equalFold(name, "expect") {
			r.expect(value)
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
		if equalFold(name, "transfer-encoding") {
			r.transferEncoding(value)
		}
	}
	return nil
}

// finish applies the checks that need the whole head.
func (r *Request) finish() error {
	if r.Flags&(FlagHost|flagsRare) == FlagHost {
		return nil
	}
	return r.finishRare()
}

// finishRare is finish for the requests without Host or with a flag of
// flagsRare.
func (r *Request) finishRare() error {
	if r.Minor >= 1 && r.Flags&FlagHost == 0 {
		return ErrMissingHost
	}
	if r.Flags&flagTE != 0 {
		switch {
		case r.Minor == 0:
			return ErrTEInHTTP10
		case r.Flags&FlagContentLength != 0:
			return ErrLengthAndChunked
		case r.Flags&flagBadTE != 0 || r.Flags&FlagChunked == 0:
			return ErrChunkedNotFinal
		case r.Flags&flagOtherTE != 0:
			return ErrUnsupportedTE
		}
	}
	if r.Flags&flagAbsolute != 0 {
		// RFC 9112 §3.2.2: the target's authority, not the Host field
		// (which must still be there in HTTP/1.1, and valid).
		r.Host, _ = absoluteAuthority(r.Target)
	}
	return nil
}

// transferEncoding records one Transfer-Encoding field; several are one
// list (RFC 9110 §5.3). FlagChunked is set once chunked is in the list;
// any coding after it (a coding applied after chunking, or chunked twice)
// sets flagBadTE, and so does a malformed list or chunked with parameters,
// which it has none of; a well-formed coding before it sets flagOtherTE.
func (r *Request) transferEncoding(v []byte) {
	if r.Flags&flagTE == 0 && equalFold(v, "chunked") {
		r.Flags |= flagTE | FlagChunked
		return
	}
	r.Flags |= flagTE
	i := 0
	for {
		// Empty elements are ignored (RFC 9110 §5.6.1).
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		if i == len(v) {
			return
		}
		start := i
		i = tokenEnd(v, i)
		if i == start {
			r.Flags |= flagBadTE
			return
		}
		name := v[start:i]
		var params bool
		if i, params = skipParams(v, i); i < 0 {
			r.Flags |= flagBadTE
			return
		}
		switch {
		case r.Flags&FlagChunked != 0:
			r.Flags |= flagBadTE
		case equalFold(name, "chunked"):
			if params {
				r.Flags |= flagBadTE
			}
			r.Flags |= FlagChunked
		default:
			r.Flags |= flagOtherTE
		}
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] != ',' {
			r.Flags |= flagBadTE
			return
		}
	}
}

// skipParams skips the parameters after a token at v[i:], *( OWS ";" OWS
// token BWS "=" BWS ( token / quoted-string ) ), as transfer-codings and
// expectations have them. It returns where they end and whether there were
// any, or -1 when they are malformed.
func skipParams(v []byte, i int) (int, bool) {
	params := false
	for {
		j := i
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		if j == len(v) || v[j] != ';' {
			return i, params
		}
		params = true
		j = skipOWS(v, j+1)
		k := tokenEnd(v, j)
		if k == j {
			return -1, params
		}
		k = skipOWS(v, k)
		if k == len(v) || v[k] != '=' {
			return -1, params
		}
		k = skipOWS(v, k+1)
		if k < len(v) && v[k] == '"' {
			if k = quotedEnd(v, k); k < 0 {
				return -1, params
			}
		} else {
			e := tokenEnd(v, k)
			if e == k {
				return -1, params
			}
			k = e
		}
		i = k
	}
}

func skipOWS(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// quotedEnd returns the index after the quoted-string (RFC 9110 §5.6.4)
// that starts at v[i], or -1 when it is malformed or does not end.
func quotedEnd(v []byte, i int) int {
	for i++; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i++; i == len(v) || !valueOK[v[i]] {
				return -1
			}
		case !valueOK[c]:
			return -1
		}
	}
	return -1
}

// expect records one Expect field: FlagExpectContinue for 100-continue,
// flagBadExpect for any other expectation (RFC 9110 §10.1.1), which the
// server cannot meet: it answers 417 (ErrExpectation). The request is
// well-formed, so ParseRequest does not refuse it.
func (r *Request) expect(v []byte) {
	if equalFold(v, "100-continue") {
		r.Flags |= FlagExpectContinue
		return
	}
	for len(v) > 0 {
		end := 0
		for end < len(v) && v[end] != ',' {
			end++
		}
		tok := trimOWS(v[:end])
		switch {
		case len(tok) == 0:
		case equalFold(tok, "100-continue"):
			r.Flags |= FlagExpectContinue
		default:
			r.Flags |= flagBadExpect
		}
		if end == len(v) {
			break
		}
		v = v[end+1:]
	}
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
