package httpd

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// The tests fix the date through the responses' setDate hook.
var testDate = time.Date(2024, time.January, 2, 3, 4, 5, 0, time.UTC)

const testDateStr = "Tue, 02 Jan 2024 03:04:05 GMT"

func testResponses() *Server {
	srv := New(Options{})
	srv.rs.setDate(testDate)
	return srv
}

// Expected responses, spelled out independently of the templates.
const (
	hdr200   = "HTTP/1.1 200 OK\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
	ok       = hdr200 + "\r\nHello, World!"
	okHead   = hdr200 + "\r\n"
	okClose  = hdr200 + "Connection: close\r\n\r\nHello, World!"
	headCl   = hdr200 + "Connection: close\r\n\r\n"
	okKA     = hdr200 + "Connection: keep-alive\r\n\r\nHello, World!"
	headKA   = hdr200 + "Connection: keep-alive\r\n\r\n"
	resp400  = "HTTP/1.1 400 Bad Request\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n"
	head400  = "HTTP/1.1 400 Bad Request\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
	resp413  = "HTTP/1.1 413 Content Too Large\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\nContent Too Large\n"
	resp431  = "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 32\r\nConnection: close\r\n\r\nRequest Header Fields Too Large\n"
	resp501  = "HTTP/1.1 501 Not Implemented\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\nNot Implemented\n"
	resp505  = "HTTP/1.1 505 HTTP Version Not Supported\r\nServer: prefork\r\nDate: " + testDateStr + "\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nHTTP Version Not Supported\n"
	cont100  = "HTTP/1.1 100 Continue\r\n\r\n"
	get      = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	head     = "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
	getClose = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
	get10    = "GET / HTTP/1.0\r\n\r\n"
	get10KA  = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
)

// run feeds chunks to s the way the loop does: what serve leaves unconsumed
// is passed again, followed by the next chunk. It stops at the first action
// other than actKeep and returns the output, that action, the number of
// responses and the unconsumed input.
func run(s *connState, rs *Server, chunks ...[]byte) (out []byte, act action, nresp int, rest []byte) {
	for _, ch := range chunks {
		rest = append(rest, ch...)
		n, o, a, k := s.serve(rest, out, rs, nil)
		out, nresp = o, nresp+k
		if a != actKeep {
			return out, a, nresp, nil
		}
		rest = append([]byte(nil), rest[n:]...)
	}
	return out, actKeep, nresp, rest
}

func bytewise(in string) [][]byte {
	chunks := make([][]byte, len(in))
	for i := range in {
		chunks[i] = []byte{in[i]}
	}
	return chunks
}

func TestServe(t *testing.T) {
	post := func(hdrs, body string) string {
		return "POST /p HTTP/1.1\r\nHost: h\r\n" + hdrs + "\r\n" + body
	}
	chunked := "Transfer-Encoding: chunked\r\n"
	tests := []struct {
		name  string
		in    string
		out   string
		act   action
		nresp int
		idle  bool // the state is idle afterwards (checked when act is actKeep)
	}{
		{name: "GET 1.1", in: get, out: ok, nresp: 1, idle: true},
		{name: "wrk GET", in: wrkReq, out: ok, nresp: 1, idle: true},
		{name: "browser GET", in: browserReq, out: ok, nresp: 1, idle: true},
		{name: "HEAD 1.1", in: head, out: okHead, nresp: 1, idle: true},
		{name: "any method and target", in: "DELETE /a/b?c=d HTTP/1.1\r\nHost: h\r\n\r\n", out: ok, nresp: 1, idle: true},
		{name: "GET 1.1 close", in: getClose, out: okClose, act: actClose, nresp: 1},
		{name: "HEAD 1.1 close", in: "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", out: headCl, act: actClose, nresp: 1},
		{name: "close token in list", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n", out: okClose, act: actClose, nresp: 1},
		{name: "GET 1.0", in: get10, out: okClose, act: actClose, nresp: 1},
		{name: "HEAD 1.0", in: "HEAD / HTTP/1.0\r\n\r\n", out: headCl, act: actClose, nresp: 1},
		{name: "GET 1.0 keep-alive", in: get10KA, out: okKA, nresp: 1, idle: true},
		{name: "HEAD 1.0 keep-alive", in: "HEAD / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", out: headKA, nresp: 1, idle: true},
		{name: "GET 1.0 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", out: okClose, act: actClose, nresp: 1},
		{name: "1.1 keep-alive header", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", out: ok, nresp: 1, idle: true},
		{name: "pipelined", in: get + head + get10KA + get, out: ok + okHead + okKA + ok, nresp: 4, idle: true},
		{name: "pipelined stop at close", in: get + getClose + get, out: ok + okClose, act: actClose, nresp: 2},
		{name: "pipelined then partial", in: get + head + "GET / HT", out: ok + okHead, nresp: 2},
		{name: "leading CRLF", in: "\r\n" + get, out: ok, nresp: 1, idle: true},
		{name: "exactly 8 KiB head", in: headOfSize(MaxHeadSize), out: ok, nresp: 1, idle: true},
		{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: h\r\n", nresp: 0},

		{name: "POST length", in: post("Content-Length: 5\r\n", "hello") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "POST length 0", in: post("Content-Length: 0\r\n", "") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "GET with body", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + head, out: ok + okHead, nresp: 2, idle: true},
		{name: "body looks like a request", in: post("Content-Length: 27\r\n", getClose[:27]) + get, out: ok + ok, nresp: 2, idle: true},
		{name: "HEAD with body", in: "HEAD / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy", out: okHead, nresp: 1, idle: true},
		{name: "body 1.0 close", in: "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nxy" + get, out: okClose, act: actClose, nresp: 1},
		{name: "partial body", in: post("Content-Length: 10\r\n", "hello"), nresp: 0},
		{name: "chunked", in: post(chunked, "5\r\nhello\r\n0\r\n\r\n") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "chunked many", in: post(chunked, "1\r\na\r\nA\r\n0123456789\r\n00010\r\n0123456789abcdef\r\n000\r\n\r\n") + head, out: ok + okHead, nresp: 2, idle: true},
		{name: "chunked extensions", in: post(chunked, "5;name=value\r\nhello\r\n3 ;a;b=\"q s\"\r\nabc\r\n0;last\r\n\r\n") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "chunked trailers", in: post(chunked, "5\r\nhello\r\n0\r\nX-Sum: 12\r\nX-Empty:\r\n\r\n") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "chunked data with CRLF inside", in: post(chunked, "4\r\n\r\n\r\n\r\n0\r\n\r\n") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "chunked then close", in: post(chunked+"Connection: close\r\n", "0\r\n\r\n") + get, out: okClose, act: actClose, nresp: 1},
		{name: "chunked partial", in: post(chunked, "5\r\nhel"), nresp: 0},
		{name: "chunked partial trailer", in: post(chunked, "0\r\nX: y\r\n"), nresp: 0},

		{name: "Expect with length", in: post("Expect: 100-continue\r\nContent-Length: 5\r\n", "hello") + get, out: cont100 + ok + ok, nresp: 2, idle: true},
		{name: "Expect with chunked", in: post("Expect: 100-continue\r\n"+chunked, "0\r\n\r\n"), out: cont100 + ok, nresp: 1, idle: true},
		{name: "Expect before body arrives", in: post("Expect: 100-continue\r\nContent-Length: 5\r\n", ""), out: cont100, nresp: 0},
		{name: "Expect without body", in: "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", out: ok, nresp: 1, idle: true},
		{name: "Expect in 1.0 ignored", in: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", out: okClose, act: actClose, nresp: 1},

		{name: "garbage", in: "GARBAGE\r\n" + strings.Repeat("junk", 100), out: resp400, act: actError, nresp: 1},
		{name: "missing Host", in: "GET / HTTP/1.1\r\n\r\n", out: resp400, act: actError, nresp: 1},
		{name: "HEAD missing Host", in: "HEAD / HTTP/1.1\r\n\r\n", out: head400, act: actError, nresp: 1},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: h\n\n", out: resp400, act: actError, nresp: 1},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", out: resp400, act: actError, nresp: 1},
		{name: "HTTP/2.0", in: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", out: resp505, act: actError, nresp: 1},
		{name: "PRI preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", out: resp505, act: actError, nresp: 1},
		{name: "8 KiB plus 1 head", in: headOfSize(MaxHeadSize + 1), out: resp431, act: actError, nresp: 1},
		{name: "CL and TE", in: post("Content-Length: 5\r\n"+chunked, "0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "bad CL", in: post("Content-Length: 1x\r\n", "x"), out: resp400, act: actError, nresp: 1},
		{name: "conflicting CL", in: post("Content-Length: 1\r\nContent-Length: 2\r\n", "xy"), out: resp400, act: actError, nresp: 1},
		{name: "TE gzip", in: post("Transfer-Encoding: gzip\r\n", ""), out: resp400, act: actError, nresp: 1},
		{name: "TE gzip, chunked", in: post("Transfer-Encoding: gzip, chunked\r\n", ""), out: resp501, act: actError, nresp: 1},
		{name: "TE in 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", out: resp400, act: actError, nresp: 1},
		{name: "good good bad", in: get + head + "GET / HTTP/1.1\r\nHost h\r\n\r\n" + get, out: ok + okHead + resp400, act: actError, nresp: 3},
		{name: "good then 505", in: get + "GET / HTTP/3.1\r\n\r\n", out: ok + resp505, act: actError, nresp: 2},
		{name: "chunk size not hex", in: post(chunked, "g\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk size empty", in: post(chunked, "\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk size negative", in: post(chunked, "-1\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk size 0x prefix", in: post(chunked, "0x5\r\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		// A chunk larger than MaxBody is refused as soon as its size says so.
		{name: "chunk size over MaxBody", in: post(chunked, "100001\r\n"), out: resp413, act: actError, nresp: 1},
		{name: "chunk size overflow", in: post(chunked, "10000000000000000\r\n"), out: resp413, act: actError, nresp: 1},
		{name: "chunk size trailing space", in: post(chunked, "5 \r\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk size bare LF", in: post(chunked, "5\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk ext bare LF", in: post(chunked, "5;a\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk ext bare CR", in: post(chunked, "5;a\rhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk ext control", in: post(chunked, "5;a\x00\r\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk data too long", in: post(chunked, "3\r\nhello\r\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "chunk data bare LF", in: post(chunked, "5\r\nhello\n0\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "last chunk bare LF", in: post(chunked, "0\r\n\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer obs-fold", in: post(chunked, "0\r\nX: a\r\n b\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer no colon", in: post(chunked, "0\r\nX\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer space before colon", in: post(chunked, "0\r\nX : y\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer control", in: post(chunked, "0\r\nX: \x01\r\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer bare LF", in: post(chunked, "0\r\nX: y\n\r\n"), out: resp400, act: actError, nresp: 1},
		{name: "trailer too large", in: post(chunked, "0\r\nX: "+strings.Repeat("t", MaxHeadSize)+"\r\n\r\n"), out: resp431, act: actError, nresp: 1},
		{name: "trailer at limit", in: post(chunked, "0\r\nX: "+strings.Repeat("t", MaxHeadSize-7)+"\r\n\r\n") + get, out: ok + ok, nresp: 2, idle: true},
		{name: "HEAD chunk error", in: "HEAD / HTTP/1.1\r\nHost: h\r\n" + chunked + "\r\nz\r\n", out: head400, act: actError, nresp: 1},
	}
	rs := testResponses()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(mode string, out []byte, act action, nresp int, s *connState) {
				t.Helper()
				if string(out) != tt.out {
					t.Errorf("%s: got output\n%q\nwant\n%q", mode, out, tt.out)
				}
				if act != tt.act {
					t.Errorf("%s: got action %d, want %d", mode, act, tt.act)
				}
				if nresp != tt.nresp {
					t.Errorf("%s: got %d responses, want %d", mode, nresp, tt.nresp)
				}
				if act == actKeep && s.idle() != tt.idle {
					t.Errorf("%s: got idle %v, want %v", mode, s.idle(), tt.idle)
				}
			}
			var s connState
			out, act, nresp, _ := run(&s, rs, []byte(tt.in))
			check("whole", out, act, nresp, &s)

			s = connState{}
			out, act, nresp, _ = run(&s, rs, bytewise(tt.in)...)
			check("byte at a time", out, act, nresp, &s)

			// Every split point; for long inputs a sample, plus the ends.
			step := 1
			if len(tt.in) > 1024 {
				step = 61
			}
			for k := 1; k < len(tt.in); k++ {
				if k%step != 0 && k > 64 && k < len(tt.in)-64 {
					continue
				}
				s = connState{}
				out, act, nresp, _ = run(&s, rs, []byte(tt.in[:k]), []byte(tt.in[k:]))
				check("split at "+itoa(k), out, act, nresp, &s)
				if t.Failed() {
					return
				}
			}
		})
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestServeLargeBodies(t *testing.T) {
	rs := testResponses()
	t.Run("content-length over MaxBody: 413 before the body", func(t *testing.T) {
		var s connState
		_, out, act, _ := s.serve([]byte("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3221225472\r\n\r\n"), nil, rs, nil)
		if act != actError || !strings.HasPrefix(string(out), "HTTP/1.1 413 Content Too Large\r\n") {
			t.Fatalf("got action %d output %q, want error and a 413 without 100 Continue", act, out)
		}
	})
	t.Run("content-length of MaxBody in pieces", func(t *testing.T) {
		var s connState
		head := []byte("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n")
		chunks := [][]byte{head}
		for sent := 0; sent < 1<<20; sent += 64 << 10 {
			chunks = append(chunks, make([]byte, 64<<10))
		}
		out, act, nresp, rest := run(&s, rs, chunks...)
		if string(out) != ok || act != actKeep || nresp != 1 || len(rest) != 0 || !s.idle() {
			t.Fatalf("got %q action %d responses %d rest %d idle %v, want one 200 and idle", out, act, nresp, len(rest), s.idle())
		}
	})
	t.Run("chunked over MaxBody", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
		data := bytes.Repeat([]byte("x"), 4096)
		for i := 0; i < 257; i++ {
			b.WriteString("1000\r\n")
			b.Write(data)
			b.WriteString("\r\n")
		}
		var s connState
		out, act, _, _ := run(&s, rs, b.Bytes())
		if act != actError || !strings.HasPrefix(string(out), "HTTP/1.1 413 ") {
			t.Errorf("got action %d output %.40q, want a 413", act, out)
		}
	})
	t.Run("chunked 1 MiB", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
		data := bytes.Repeat([]byte("0123456789abcdef"), 256)
		for i := 0; i < 256; i++ {
			b.WriteString("1000;i=x\r\n")
			b.Write(data)
			b.WriteString("\r\n")
		}
		b.WriteString("0\r\n\r\n" + get)
		var s connState
		out, act, nresp, rest := run(&s, rs, b.Bytes())
		if string(out) != ok+ok || act != actKeep || nresp != 2 || len(rest) != 0 {
			t.Errorf("got output %q action %d responses %d rest %d, want two 200s, keep, 2, 0", out, act, nresp, len(rest))
		}
	})
}

func TestDrainState(t *testing.T) {
	rs := testResponses()
	tests := []struct {
		name string
		in   string // before the drain
		idle bool
		more string // after the drain
		out  string // from more
		act  action
	}{
		{name: "fresh: no request yet", more: get, out: okClose, act: actShutdown},
		{name: "after a request", in: get, idle: true},
		{name: "partial head", in: "GET / HTTP/1.1\r\nHo", more: "st: h\r\n\r\n" + get, out: okClose, act: actShutdown},
		{name: "after a request and a CRLF", in: get + "\r\n", idle: true},
		{name: "only CRLF", in: "\r\n", more: get, out: okClose, act: actShutdown},
		{name: "lone CR", in: "\r", more: "\n" + get, out: okClose, act: actShutdown},
		{name: "mid body", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab", more: "cd" + get, out: okClose, act: actShutdown},
		{name: "mid chunked HEAD", in: "HEAD / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", more: "0\r\n\r\n", out: headCl, act: actShutdown},
		{name: "1.0 keep-alive in flight", in: "GET / HTTP/1.0\r\n", more: "Connection: keep-alive\r\n\r\n", out: okClose, act: actShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s connState
			_, _, _, rest := run(&s, rs, []byte(tt.in))
			if got := s.idle(); got != tt.idle {
				t.Fatalf("got idle %v, want %v", got, tt.idle)
			}
			if tt.idle {
				return
			}
			s.flags |= sDrain
			out, act, _, _ := run(&s, rs, append(rest, tt.more...))
			if string(out) != tt.out || act != tt.act {
				t.Errorf("got output %q action %d, want %q %d", out, act, tt.out, tt.act)
			}
		})
	}
}

func TestSetDate(t *testing.T) {
	srv := testResponses()
	var s connState
	out, _, _, _ := run(&s, srv, []byte(get))
	if string(out) != ok {
		t.Fatalf("got %q, want %q", out, ok)
	}
	rs := srv.rs
	rs.setDate(time.Date(2031, time.December, 31, 23, 59, 59, 0, time.FixedZone("X", 3600)))
	if rs.sec != time.Date(2031, time.December, 31, 22, 59, 59, 0, time.UTC).Unix() {
		t.Errorf("got sec %d, want the new second", rs.sec)
	}
	out = rs.appendError(nil, ErrBadRequestLine, false)
	want := strings.Replace(resp400, testDateStr, "Wed, 31 Dec 2031 22:59:59 GMT", 1)
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	rs.setDate(time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC))
	if out = rs.appendError(nil, ErrBadRequestLine, false); string(out) != want {
		t.Errorf("after a 5-digit year: got %q, want the last date kept: %q", out, want)
	}
	if out, _, _, _ = run(&s, srv, []byte(get)); !strings.Contains(string(out), "Date: Wed, 31 Dec 2031 22:59:59 GMT\r\n") {
		t.Errorf("a handler's response after setDate: got %q, want the new date", out)
	}
}

func TestNewServerName(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"prefork", true},
		{"nginx/1.27.0 (Ubuntu)", true},
		{"a\r\nX-Injected: 1", false},
		{" lead", false},
		{"trail\t", false},
		{"nul\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover() == nil; got != tt.valid {
					t.Errorf("New(%q): got accepted %v, want %v", tt.name, got, tt.valid)
				}
			}()
			h := New(Options{ServerName: tt.name})
			var s connState
			got, _, _, _ := run(&s, h, []byte(head))
			if !bytes.Contains(got, []byte("\r\nServer: "+tt.name+"\r\n")) {
				t.Errorf("got %q, want Server: %s", got, tt.name)
			}
		})
	}
}

func TestServeAllocs(t *testing.T) {
	rs := testResponses()
	pipelined := []byte(strings.Repeat(wrkReq, 16))
	chunked := []byte("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n")
	tests := []struct {
		name string
		in   []byte
	}{
		{"keep-alive GET", []byte(wrkReq)},
		{"browser GET", []byte(browserReq)},
		{"16 pipelined", pipelined},
		{"chunked POST", chunked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s connState
			out := make([]byte, 0, 8<<10)
			allocs := testing.AllocsPerRun(1000, func() {
				n, o, act, _ := s.serve(tt.in, out[:0], rs, nil)
				if n != len(tt.in) || act != actKeep {
					panic("unexpected serve result")
				}
				out = o
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per request, want 0", allocs)
			}
		})
	}
}

func TestStateSize(t *testing.T) {
	if got := unsafe.Sizeof(connState{}); got > 16 {
		t.Errorf("got connState of %d bytes, want at most 16", got)
	}
}

func TestSetDateAllocs(t *testing.T) {
	rs := testResponses()
	now := testDate
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Second)
		rs.rs.setDate(now)
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per date refresh, want 0", allocs)
	}
}
