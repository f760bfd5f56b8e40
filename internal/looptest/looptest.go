// Package looptest runs a real loop on a loopback listener for tests of the
// loop and of protocol handlers.
package looptest

import (
	"testing"
	"time"

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
