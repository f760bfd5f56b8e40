package httpd

import (
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
