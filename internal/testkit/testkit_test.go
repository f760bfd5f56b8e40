package testkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalTB records Fatalf instead of failing the test running it. Its Fatalf
// ends the goroutine, as testing's does, so the caller runs it in one.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForHolds(t *testing.T) {
	n := 0
	start := time.Now()
	WaitFor(t, "the third call", 10*time.Second, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WaitFor took %v for a condition true at the third poll", d)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		WaitFor(f, "the impossible", 50*time.Millisecond, func() bool { return false })
	}()
	<-done
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("WaitFor gave up after %v, before its 50ms", d)
	}
	if want := "timed out after 50ms waiting for the impossible"; f.msg != want {
		t.Errorf("Fatalf message: got %q, want %q", f.msg, want)
	}
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		_, _ = io.Copy(s, s)
	}()

	var c *net.TCPConn
	t.Run("dial", func(t *testing.T) {
		c = Dial(t, ln.Addr().String())
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: got %q, %v", buf, err)
		}
	})
	if c == nil {
		t.FailNow()
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after the subtest ended: got %v, want net.ErrClosed (closed at cleanup)", err)
	}
}

func TestDialFails(t *testing.T) {
	// A port nobody listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Dial(f, addr)
	}()
	<-done
	if !strings.HasPrefix(f.msg, "dial "+addr+": ") {
		t.Errorf("Fatalf message: got %q, want it to start with %q", f.msg, "dial "+addr+": ")
	}
}
