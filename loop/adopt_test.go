package loop_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/reuseport"
)

// startBare runs a loop with no listener, as a handoff-mode worker's.
func startBare(t *testing.T, cfg loop.Config) *loop.Loop {
	t.Helper()
	l, err := loop.New(cfg)
	if err != nil {
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
			t.Error("loop did not stop within 10s")
		}
	})
	return l
}

// acceptedTCP returns the server side of a fresh loopback TCP connection,
// accepted blocking and close-on-exec as the master's acceptor would hand
// it over, and the client side.
func acceptedTCP(t *testing.T) (int, *net.TCPConn) {
	t.Helper()
	lfd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	addr, err := reuseport.BoundAddr(lfd)
	if err != nil {
		t.Fatal(err)
	}
	c := testkit.Dial(t, addr)
	fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC) // blocking: AddConn must make it non-blocking
	if err != nil {
		t.Fatal(err)
	}
	return fd, c
}

// adoptHandler is echo that records what the loop told it.
type adoptHandler struct {
	*echo.Handler
	mu      sync.Mutex
	opened  int
	nodelay int
	reasons []loop.CloseReason
	drained int
	// keepFirst: OnDrain leaves the first connection open.
	keepFirst bool
}

func (h *adoptHandler) OnOpen(c *loop.Conn) {
	v, _ := unix.GetsockoptInt(c.Fd(), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	h.mu.Lock()
	h.opened++
	h.nodelay += v
	h.mu.Unlock()
	h.Handler.OnOpen(c)
}

func (h *adoptHandler) OnClose(c *loop.Conn, r loop.CloseReason) {
	h.mu.Lock()
	h.reasons = append(h.reasons, r)
	h.mu.Unlock()
	h.Handler.OnClose(c, r)
}

// OnDrain closes the connection, except the first one drained when
// keepFirst is set (it holds the drain open for the test).
func (h *adoptHandler) OnDrain(c *loop.Conn) {
	h.mu.Lock()
	h.drained++
	keep := h.keepFirst && h.drained == 1
	h.mu.Unlock()
	if !keep {
		c.Close(loop.ReasonShutdown)
	}
}

func (h *adoptHandler) snapshot() (opened, nodelay, drained int, reasons []loop.CloseReason) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opened, h.nodelay, h.drained, append([]loop.CloseReason(nil), h.reasons...)
}

func adopt(t *testing.T, l *loop.Loop, fd int, tcp bool) error {
	t.Helper()
	return looptest.OnLoop(t, l, func() error { return l.AddConn(fd, tcp) })
}

// TestAddConn: an adopted connection is served like an accepted one: input
// that arrived before adoption is delivered, OnOpen runs, TCP_NODELAY is set,
// it is counted, and the peer's close is seen.
func TestAddConn(t *testing.T) {
	h := &adoptHandler{Handler: echo.New()}
	l := startBare(t, loop.Config{Handler: h})
	fd, c := acceptedTCP(t)
	if _, err := c.Write([]byte("early ")); err != nil { // before the loop has the fd
		t.Fatal(err)
	}
	if err := adopt(t, l, fd, true); err != nil {
		t.Fatalf("AddConn: %v", err)
	}
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("early late"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "early late" {
		t.Fatalf("echo: got %q, %v; want %q", got, err, "early late")
	}
	st := statsOf(t, l)
	if st.Accepted != 1 || st.Active != 1 {
		t.Errorf("stats: got accepted %d active %d, want 1 and 1", st.Accepted, st.Active)
	}
	if opened, nodelay, _, _ := h.snapshot(); opened != 1 || nodelay != 1 {
		t.Errorf("OnOpen calls %d with TCP_NODELAY %d; want 1 and 1", opened, nodelay)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	readEOF(t, c)
	testkit.WaitFor(t, "the close counted", 10*time.Second, func() bool {
		st := statsOf(t, l)
		return st.Active == 0 && st.Closed[loop.ReasonPeer] == 1
	})
}

// TestAddConnKinds: a non-TCP stream socket is adopted without TCP options;
// a bad fd or a stopped loop is refused with the fd closed.
func TestAddConnKinds(t *testing.T) {
	t.Run("unix stream", func(t *testing.T) {
		h := &adoptHandler{Handler: echo.New()}
		l := startBare(t, loop.Config{Handler: h})
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pair[1])
		if err := adopt(t, l, pair[0], false); err != nil {
			t.Fatalf("AddConn: %v", err)
		}
		if _, err := unix.Write(pair[1], []byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if n, err := unix.Read(pair[1], buf); err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("echo over a unix socket: got %q, %v", buf[:n], err)
		}
	})
	t.Run("bad fd", func(t *testing.T) {
		l := startBare(t, loop.Config{Handler: echo.New()})
		if err := adopt(t, l, -1, true); err == nil {
			t.Error("AddConn(-1): got no error")
		}
		if st := statsOf(t, l); st.Accepted != 0 || st.Active != 0 {
			t.Errorf("stats after refusals: accepted %d active %d, want 0 and 0", st.Accepted, st.Active)
		}
	})
}

// TestAddConnTimeoutsAndDrain: an adopted connection gets the idle timeout;
// one adopted during a graceful stop is drained (OnDrain); after the loop
// stopped, AddConn closes the fd and says so.
func TestAddConnTimeoutsAndDrain(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		h := &adoptHandler{Handler: echo.New()}
		l := startBare(t, loop.Config{Handler: h, IdleTimeout: 200 * time.Millisecond})
		fd, c := acceptedTCP(t)
		if err := adopt(t, l, fd, true); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		readEOF(t, c)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("idle close took %v", el)
		}
		testkit.WaitFor(t, "OnClose", 10*time.Second, func() bool {
			_, _, _, reasons := h.snapshot()
			return len(reasons) > 0
		})
		if _, _, _, reasons := h.snapshot(); len(reasons) != 1 || reasons[0] != loop.ReasonTimeout {
			t.Errorf("close reasons: got %v, want [timeout]", reasons)
		}
	})
	t.Run("during drain", func(t *testing.T) {
		h := &adoptHandler{Handler: echo.New(), keepFirst: true}
		l := startBare(t, loop.Config{Handler: h})
		keep, kc := acceptedTCP(t) // drained but left open: it holds the drain open
		if err := adopt(t, l, keep, true); err != nil {
			t.Fatal(err)
		}
		fd, c := acceptedTCP(t)
		if err := looptest.OnLoop(t, l, func() error {
			l.Shutdown(time.Minute)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, "the drain to begin", 10*time.Second, func() bool {
			return looptest.OnLoop(t, l, l.Draining)
		})
		if err := adopt(t, l, fd, true); err != nil {
			t.Fatalf("AddConn during drain: %v", err)
		}
		readEOF(t, c) // drained at once: OnDrain closed it
		if _, _, drained, _ := h.snapshot(); drained != 2 {
			t.Errorf("OnDrain calls: got %d, want 2 (the open one and the one adopted during the drain)", drained)
		}
		kc.Close() // the last connection gone, the drain ends
		select {
		case <-l.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the loop did not finish its drain")
		}
	})
	t.Run("stopped loop", func(t *testing.T) {
		l, err := loop.New(loop.Config{Handler: echo.New()})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = l.Run() }()
		l.Stop()
		<-l.Done()
		fd, c := acceptedTCP(t)
		if err := l.AddConn(fd, true); !errors.Is(err, loop.ErrNotAdopted) {
			t.Errorf("AddConn on a stopped loop: got %v, want ErrNotAdopted", err)
		}
		readEOF(t, c) // the fd was closed: the client sees EOF
	})
}
