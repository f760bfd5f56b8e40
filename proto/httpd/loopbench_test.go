package httpd

import (
	"bytes"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/loop"
)

// BenchmarkLoopbackKeepAlive runs requests through a real loop over loopback
// with a client made of plain system calls (it allocates nothing), so
// allocs/op is the server's request path: accept once, then per request
// read → parse → respond → write.
func BenchmarkLoopbackKeepAlive(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("pipeline="+strconv.Itoa(depth), func(b *testing.B) {
			addr, _ := looptest.Start(b, loop.Config{Handler: New(Options{})})
			fd := looptest.DialRaw(b, addr)
			req := bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"), depth)
			buf := make([]byte, 64<<10)
			suffix := []byte(Body)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := unix.Write(fd, req); err != nil {
					b.Fatal(err)
				}
				got, n := 0, 0
				for got < depth {
					k, err := unix.Read(fd, buf[n:])
					if err != nil || k == 0 {
						b.Fatalf("read: %v", err)
					}
					n += k
					got = bytes.Count(buf[:n], suffix)
				}
			}
		})
	}
}
