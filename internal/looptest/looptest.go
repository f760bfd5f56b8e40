// Package looptest runs a real loop on a loopback listener for tests of the
// loop and of protocol handlers.
package looptest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/reuseport"
)

// Start serves cfg (cfg.Handler must be set) on 127.0.0.1 at a free port in
// a goroutine and returns the address and the loop. The loop is stopped, and
// Run's result checked, when the test ends.
func Start(t testing.TB, cfg loop.Config) (string, *loop.Loop) {
	t.Helper()
	fd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := reuseport.BoundAddr(fd)
	if err != nil {
		t.Fatal(err)
	}
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddListener(fd, false); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	t.Cleanup(func() {
		l.Stop()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("loop.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("loop did not stop within 10s")
		}
	})
	return addr, l
}

// DialRaw connects a blocking TCP socket to addr ("127.0.0.1:port") with plain
// system calls and returns its fd, closed when the test ends. A benchmark
// client built on it allocates nothing, so -benchmem shows the server's
// allocations alone.
func DialRaw(t testing.TB, addr string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	sa := &unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], net.ParseIP(host).To4())
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return fd
}

// OnLoop runs fn on l's thread (through Post) and returns its result; loop
// state such as Stats or a handler's counters may only be read there.
func OnLoop[T any](t testing.TB, l *loop.Loop, fn func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	l.Post(func() { ch <- fn() })
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run a posted task within 10s")
		var zero T
		return zero
	}
}
