package httpd

import (
	"io"
	"time"

	"github.com/prefork/prefork/loop"
)

// accessLog buffers one line per request and writes them in batches: at
// 64 KiB, 100 ms after the first line of a batch, and when a drain begins,
// so logging costs no system call per request. The client's address is
// asked of the kernel once per connection.
type accessLog struct {
	w     io.Writer
	buf   []byte
	timer *loop.Timer
	peers map[*loop.Conn]string
}

const (
	accessLogBatch = 64 << 10
	accessLogDelay = 100 * time.Millisecond
)

// log appends the line for one response:
//
//	2026-12-01T22:45:00.123Z 127.0.0.1:54321 "GET /path HTTP/1.1" 200 13 0.000012
//
// time (UTC, ms), client address, request line as sent, status, body bytes,
// seconds from the request to its response.
func (a *accessLog) log(c *loop.Conn, r *Request, status, n int, took time.Duration) {
	a.begin(c)
	a.buf = appendRequestLine(a.buf, r)
	a.end(c, status, n, took)
}

// logLine is log for a request line kept since the request (a deferred one).
func (a *accessLog) logLine(c *loop.Conn, line []byte, status, n int, took time.Duration) {
	a.begin(c)
	a.buf = append(a.buf, line...)
	a.end(c, status, n, took)
}

func (a *accessLog) begin(c *loop.Conn) {
	a.buf = time.Now().UTC().AppendFormat(a.buf, "2006-01-02T15:04:05.000Z")
	a.buf = append(a.buf, ' ')
	a.buf = append(a.buf, a.peer(c)...)
	a.buf = append(a.buf, ` "`...)
}

func (a *accessLog) end(c *loop.Conn, status, n int, took time.Duration) {
	a.buf = append(a.buf, `" `...)
	a.buf = appendDecimal(a.buf, status)
	a.buf = append(a.buf, ' ')
	a.buf = appendDecimal(a.buf, n)
	a.buf = append(a.buf, ' ')
	a.buf = appendSeconds(a.buf, took)
	a.buf = append(a.buf, '\n')
	switch {
	case len(a.buf) >= accessLogBatch:
		a.flush()
	case a.timer == nil && c != nil:
		a.timer = c.Loop().AfterFunc(accessLogDelay, a.flush)
	}
}

// appendRequestLine appends "METHOD TARGET HTTP/1.x" as sent (escaped), or
// "-" for a request that did not parse that far.
func appendRequestLine(out []byte, r *Request) []byte {
	if len(r.Method) == 0 {
		return append(out, '-')
	}
	out = appendPrintable(out, r.Method)
	out = append(out, ' ')
	out = appendPrintable(out, r.Target)
	out = append(out, " HTTP/1."...)
	return append(out, '0'+r.Minor)
}

// flush writes what is buffered (loop goroutine).
func (a *accessLog) flush() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if len(a.buf) == 0 {
		return
	}
	_, _ = a.w.Write(a.buf) // a full disk must not stop the serving
	if cap(a.buf) > 4*accessLogBatch {
		a.buf = nil
	} else {
		a.buf = a.buf[:0]
	}
}

func (a *accessLog) peer(c *loop.Conn) string {
	if c == nil {
		return "-"
	}
	if p, ok := a.peers[c]; ok {
		return p
	}
	p := "-"
	if ra, err := c.RemoteAddr(); err == nil {
		p = ra.String()
	}
	if a.peers == nil {
		a.peers = map[*loop.Conn]string{}
	}
	a.peers[c] = p
	return p
}

// appendPrintable appends b with bytes a log reader could be fooled by
// (controls, quotes, backslashes) as \xHH.
func appendPrintable(out, b []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		out = append(out, c)
	}
	return out
}

// appendSeconds appends d in seconds with microseconds: "0.000012".
func appendSeconds(out []byte, d time.Duration) []byte {
	us := int(d / time.Microsecond)
	out = appendDecimal(out, us/1e6)
	out = append(out, '.')
	frac := us % 1e6
	for div := 100000; div > 0; div /= 10 {
		out = append(out, byte('0'+frac/div%10))
	}
	return out
}
