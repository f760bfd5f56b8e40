package httpd

import (
	"bytes"
	"strings"
	"testing"
)

func BenchmarkParseRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   string
	}{
		{"wrk", wrkReq},
		{"browser", browserReq},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			var r Request
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(in, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkServe(b *testing.B) {
	chunked := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1000\r\n"+strings.Repeat("x", 4096)+"\r\n", 16) + "0\r\n\r\n"
	for _, bc := range []struct {
		name string
		in   string
		reqs int
	}{
		{"1", wrkReq, 1},
		{"pipelined16", strings.Repeat(wrkReq, 16), 16},
		{"browser", browserReq, 1},
		{"chunked64KiB", chunked, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rs := testResponses()
			in := []byte(bc.in)
			out := make([]byte, 0, 16<<10)
			var s connState
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				n, o, act, nresp := s.serve(in, out[:0], rs, nil)
				if n != len(in) || act != actKeep || nresp != bc.reqs {
					b.Fatalf("got consumed %d action %d responses %d", n, act, nresp)
				}
				out = o
			}
		})
	}
}

// apiHandler reads a header and a query argument and writes a 1 KiB body:
// the yardstick for the native API.
func apiHandler() Handler {
	body := []byte(strings.Repeat("x", 1024))
	ct := MustField("Content-Type", "application/octet-stream")
	return HandlerFunc(func(c *Ctx) {
		ua := c.Header("User-Agent")
		id, _ := c.Query("id")
		if len(ua) == 0 || len(id) == 0 {
			c.SetStatus(400)
			return
		}
		c.AddField(ct)
		_ = c.SetHeader("X-Id", "1")
		_, _ = c.Write(body)
	})
}

const apiReq = "GET /item?id=42&x=y HTTP/1.1\r\nHost: example.org\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"

// BenchmarkHandlerAPI: the native API end to end over the protocol, no
// socket; -benchmem shows 0 allocs/op.
func BenchmarkHandlerAPI(b *testing.B) {
	srv := New(Options{Handler: apiHandler()})
	in := []byte(apiReq)
	out := make([]byte, 0, 16<<10)
	var s connState
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		n, o, act, nresp := s.serve(in, out[:0], srv, nil)
		if n != len(in) || act != actKeep || nresp != 1 || len(o) < 1024 {
			b.Fatalf("got consumed %d action %d responses %d out %d", n, act, nresp, len(o))
		}
		out = o
	}
}

func TestHandlerAPIAllocs(t *testing.T) {
	srv := New(Options{Handler: apiHandler()})
	in := []byte(apiReq)
	out := make([]byte, 0, 16<<10)
	var s connState
	s.serve(in, out[:0], srv, nil) // warm the reused buffers
	allocs := testing.AllocsPerRun(1000, func() {
		_, o, _, _ := s.serve(in, out[:0], srv, nil)
		if !bytes.Contains(o[:40], []byte("200 OK")) {
			t.Fatalf("got %q", o)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per request, want 0", allocs)
	}
}
