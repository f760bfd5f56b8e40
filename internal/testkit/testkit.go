// Package testkit bounds what tests wait for: WaitFor polls a condition until
// a deadline, and Dial opens a TCP connection whose I/O is bounded by
// IOTimeout. It imports nothing from prefork, so the tests of any package,
// reuseport's internal tests included, can use it without an import cycle.
package testkit

import (
	"net"
	"testing"
	"time"
)

// IOTimeout bounds a test's network I/O: Dial's connect and the deadline it
// sets on the connection.
const IOTimeout = 10 * time.Second

// pollInterval is how often WaitFor evaluates its condition.
const pollInterval = 5 * time.Millisecond

// WaitFor polls cond every few milliseconds until it holds, and fails the test
// with what and within if it still does not after within. Like t.Fatalf, it
// must be called from the goroutine running the test.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}

// Dial connects to addr over TCP within IOTimeout, sets a deadline IOTimeout
// from now for all I/O on the connection, and closes it when the test ends.
// The connection has TCP_NODELAY, as every TCP connection Go makes.
func Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, IOTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(IOTimeout)); err != nil {
		t.Fatalf("dial %s: set deadline: %v", addr, err)
	}
	return c.(*net.TCPConn)
}
