package loop_test

import (
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
)

func readFull(b *testing.B, fd int, buf []byte) {
	for n := 0; n < len(buf); {
		k, err := unix.Read(fd, buf[n:])
		if err != nil || k == 0 {
			b.Fatalf("read: %v (%d bytes)", err, k)
		}
		n += k
	}
}

// BenchmarkEchoRoundTrip measures one 128-byte echo through the loop over
// loopback: accept once, then read → OnData → write per iteration. allocs/op
// covers the whole process (the client makes none), so it shows whether the
// loop's request path allocates.
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("inflight="+strconv.Itoa(depth), func(b *testing.B) {
			addr, _ := looptest.Start(b, loop.Config{Handler: echo.New()})
			fd := looptest.DialRaw(b, addr)
			msg := make([]byte, 128*depth)
			buf := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := unix.Write(fd, msg); err != nil {
					b.Fatal(err)
				}
				readFull(b, fd, buf)
			}
		})
	}
}
