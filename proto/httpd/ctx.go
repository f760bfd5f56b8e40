package httpd

import (
	"net"

	"github.com/prefork/prefork/loop"
)

// Handler serves requests with the native API: Serve is called once per
// request, on the loop's goroutine, after the whole request (head and body)
// has arrived. It must not block: work that waits (a database, a sleep, a
// call to another service) defers the response (Ctx.Defer) and completes it
// from a goroutine.
type Handler interface {
	Serve(c *Ctx)
}

// HandlerFunc is a function used as a Handler.
type HandlerFunc func(c *Ctx)

// Serve calls f(c).
func (f HandlerFunc) Serve(c *Ctx) { f(c) }

// Ctx is one request and its response. The server reuses it: a handler must
// not keep it, or any byte slice it returns, after Serve returns (copy what
// a deferred response needs). Every accessor is allocation-free.
//
// The response starts as 200 with no headers and an empty body; the server
// adds Server, Date, Content-Length and Connection when it writes it.
type Ctx struct {
	Response

	req     Request
	reqBody []byte
	conn    *loop.Conn
	srv     *Server
	st      *connState

	path    []byte // the decoded path, built on first use
	pathBuf []byte // where a path with escapes is decoded into (reused)
	pathOK  bool
	scratch []byte // decoded query values, valid until Serve returns
	params  [maxParams]param
	nparams int

	deferred *Deferred // set by Defer
}

const maxParams = 8

type param struct {
	name  string
	value []byte
}

// Method returns the request method as sent ("GET", "POST", ...).
func (c *Ctx) Method() []byte { return c.req.Method }

// IsHead reports whether the method is HEAD; the response then goes
// without its body, whatever the handler wrote.
func (c *Ctx) IsHead() bool { return c.req.Flags&FlagHEAD != 0 }

// Target returns the request-target as sent: "/a%20b?x=1", "*",
// "http://host/p".
func (c *Ctx) Target() []byte { return c.req.Target }

// RawPath returns the path of the target, still percent-encoded, without
// the query: "/a%20b". For an absolute-form target it is the path after the
// authority ("/" when there is none); for "*", "*".
func (c *Ctx) RawPath() []byte {
	t := c.req.Target
	if len(t) > 0 && t[0] != '/' && t[0] != '*' {
		// absolute-form: scheme "://" authority path
		if i := indexString(t, "://"); i >= 0 {
			t = t[i+3:]
			j := 0
			for j < len(t) && t[j] != '/' && t[j] != '?' {
				j++
			}
			t = t[j:]
			if len(t) == 0 || t[0] == '?' {
				return slash
			}
		}
	}
	for i := 0; i < len(t); i++ {
		if t[i] == '?' {
			return t[:i]
		}
	}
	return t
}

var slash = []byte("/")

// Path returns the path percent-decoded: "/a b". A path with a malformed
// escape is returned as sent.
func (c *Ctx) Path() []byte {
	if c.pathOK {
		return c.path
	}
	raw := c.RawPath()
	c.pathOK = true
	if indexByte(raw, '%') < 0 {
		c.path = raw
		return raw
	}
	d, ok := unescape(c.pathBuf[:0], raw, false)
	if !ok {
		c.path = raw
		return raw
	}
	c.pathBuf, c.path = d, d
	return d
}

// QueryString returns the query, after '?', as sent ("" when none).
func (c *Ctx) QueryString() []byte {
	t := c.req.Target
	if i := indexByte(t, '?'); i >= 0 {
		return t[i+1:]
	}
	return nil
}

// Query returns the decoded value of the first query argument named name
// ('+' is a space, as in HTML forms), and whether there is one.
func (c *Ctx) Query(name string) ([]byte, bool) {
	var val []byte
	found := false
	c.visitQuery(func(k, v []byte) bool {
		if !queryKeyIs(k, name) {
			return true
		}
		start := len(c.scratch)
		d, ok := unescape(c.scratch, v, true)
		if !ok {
			d = append(c.scratch, v...)
		}
		c.scratch = d
		val, found = d[start:len(d):len(d)], true
		return false
	})
	return val, found
}

// VisitQuery calls fn with every query argument, key and value decoded,
// in order, until fn returns false. The slices are valid until Serve
// returns.
func (c *Ctx) VisitQuery(fn func(key, value []byte) bool) {
	c.visitQuery(func(k, v []byte) bool {
		start := len(c.scratch)
		d, ok := unescape(c.scratch, k, true)
		if !ok {
			d = append(c.scratch[:start], k...)
		}
		mid := len(d)
		d2, ok := unescape(d, v, true)
		if !ok {
			d2 = append(d[:mid], v...)
		}
		c.scratch = d2
		return fn(d2[start:mid:mid], d2[mid:len(d2):len(d2)])
	})
}

// visitQuery splits the raw query at '&' and '='.
func (c *Ctx) visitQuery(fn func(k, v []byte) bool) {
	q := c.QueryString()
	for len(q) > 0 {
		end := indexByte(q, '&')
		pair := q
		if end >= 0 {
			pair, q = q[:end], q[end+1:]
		} else {
			q = nil
		}
		if len(pair) == 0 {
			continue
		}
		k, v := pair, pair[len(pair):]
		if eq := indexByte(pair, '='); eq >= 0 {
			k, v = pair[:eq], pair[eq+1:]
		}
		if !fn(k, v) {
			return
		}
	}
}

// queryKeyIs compares a raw query key with name, decoding escapes on the fly.
func queryKeyIs(raw []byte, name string) bool {
	if indexByte(raw, '%') < 0 && indexByte(raw, '+') < 0 {
		return string(raw) == name
	}
	var buf [64]byte
	d, ok := unescape(buf[:0], raw, true)
	return ok && string(d) == name
}

// Header returns the value of the first request header field named name
// (case-insensitive), with surrounding whitespace trimmed; nil when absent.
func (c *Ctx) Header(name string) []byte {
	var val []byte
	visitFields(c.req.Fields, func(n, v []byte) bool {
		if len(n) == len(name) && equalFoldString(n, name) {
			val = v
			return false
		}
		return true
	})
	return val
}

// VisitHeaders calls fn with every request header field in order, until fn
// returns false.
func (c *Ctx) VisitHeaders(fn func(name, value []byte) bool) {
	visitFields(c.req.Fields, fn)
}

// Host returns the Host header (nil for an HTTP/1.0 request without one).
func (c *Ctx) Host() []byte { return c.req.Host }

// ProtoMinor returns the x of HTTP/1.x.
func (c *Ctx) ProtoMinor() int { return int(c.req.Minor) }

// Proto returns "HTTP/1.1" or "HTTP/1.0".
func (c *Ctx) Proto() string {
	if c.req.Minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// KeepAlive reports whether the client lets the connection stay open after
// this response.
func (c *Ctx) KeepAlive() bool { return c.req.KeepAlive() }

// ContentLength returns the request body's length (0 when none).
func (c *Ctx) ContentLength() int { return len(c.reqBody) }

// Body returns the whole request body, de-chunked: at most the server's
// MaxBody bytes (a larger one was answered 413 before the handler ran).
func (c *Ctx) Body() []byte { return c.reqBody }

// RemoteAddr asks the kernel for the client's address (getpeername(2)).
func (c *Ctx) RemoteAddr() (net.Addr, error) { return c.conn.RemoteAddr() }

// Param returns the value of the path parameter {name} the Router matched
// ("" when there is none). It is percent-decoded.
func (c *Ctx) Param(name string) []byte {
	for i := 0; i < c.nparams; i++ {
		if c.params[i].name == name {
			return c.params[i].value
		}
	}
	return nil
}

// SendFile makes the response body n bytes of the open file fd from offset
// off (after anything written with Write), sent with sendfile(2) from the
// loop, without copying it through the process; small files are read into
// the response instead, so head and body leave in one write. fd stays the
// caller's: the server takes its own descriptor when it needs one past
// Serve. Content-Length counts it.
func (c *Ctx) SendFile(fd int, off, n int64) {
	c.hasFile, c.fileFD, c.fileOff, c.fileLen = true, fd, off, max(n, 0)
}

// reset prepares c for the next request.
func (c *Ctx) reset() {
	c.Response.reset()
	c.reqBody = nil
	c.path = nil
	c.pathOK = false
	c.scratch = c.scratch[:0]
	c.nparams = 0
	c.deferred = nil
	c.conn, c.st = nil, nil
}

// visitFields calls fn with each field line of a validated header section.
func visitFields(f []byte, fn func(name, value []byte) bool) {
	for len(f) > 0 {
		end := indexByte(f, '\r')
		if end < 0 {
			return
		}
		line := f[:end]
		f = f[end+2:]
		colon := indexByte(line, ':')
		if colon < 0 {
			continue
		}
		if !fn(line[:colon], trimOWS(line[colon+1:])) {
			return
		}
	}
}

func equalFoldString(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || (x|0x20) < 'a' || (x|0x20) > 'z' {
			return false
		}
	}
	return true
}

func indexByte(b []byte, c byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func indexString(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// unescape appends the percent-decoding of s to dst ('+' as space when
// plus); ok is false for a malformed escape.
func unescape(dst, s []byte, plus bool) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) {
				return dst, false
			}
			h, l := hexVal[s[i+1]], hexVal[s[i+2]]
			if h < 0 || l < 0 {
				return dst, false
			}
			dst = append(dst, byte(h<<4|l))
			i += 2
		case c == '+' && plus:
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}
