package loop_test

import (
	"net"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
)

// rawDial connects a blocking socket with plain system calls, so a benchmark
// client adds no allocations of its own to what -benchmem reports.
func rawDial(b *testing.B, addr string) int {
	b.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	sa := &unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], net.ParseIP(host).To4())
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		b.Fatal(err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}

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
			fd := rawDial(b, addr)
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
