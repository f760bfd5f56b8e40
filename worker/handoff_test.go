package worker

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/reuseport"
	"github.com/prefork/prefork/wire"
)

// The worker's side of handoff mode against a fake master: a real loop, a
// real SEQPACKET socketpair, real TCP connections passed with SCM_RIGHTS.

type handoffFixture struct {
	l      *loop.Loop
	h      *handoff
	master int // the master's end of the control socket
	lfd    int
	addr   string
}

func newHandoffFixture(t *testing.T, enabled bool) *handoffFixture {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
	l, err := loop.New(loop.Config{Handler: echo.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	t.Cleanup(func() {
		l.Stop()
		if err := <-errc; err != nil {
			t.Errorf("loop: %v", err)
		}
	})
	lfd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lfd) })
	addr, err := reuseport.BoundAddr(lfd)
	if err != nil {
		t.Fatal(err)
	}
	return &handoffFixture{l: l, h: newHandoff(pair[1], l, slog.New(slog.NewTextHandler(io.Discard, nil)), enabled),
		master: pair[0], lfd: lfd, addr: addr}
}

// conns makes n client connections and returns them with the server sides.
func (f *handoffFixture) conns(t *testing.T, n int) ([]*net.TCPConn, []int) {
	t.Helper()
	var cs []*net.TCPConn
	var fds []int
	for i := 0; i < n; i++ {
		cs = append(cs, testkit.Dial(t, f.addr))
		fd, _, err := unix.Accept4(f.lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	return cs, fds
}

// send is the master: one datagram msg with fds, then its copies closed.
func (f *handoffFixture) send(t *testing.T, msg string, fds []int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(f.master, []byte(msg), oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// receive runs one recv+take on the loop, as the worker's Watch callback.
func (f *handoffFixture) receive(t *testing.T) (fdsMsg bool) {
	t.Helper()
	return looptest.OnLoop(t, f.l, func() bool {
		buf := make([]byte, 512)
		n, fds, trunc, err := f.h.recv(buf)
		if err != nil {
			t.Errorf("recv: %v", err)
			return false
		}
		return f.h.take(buf[:n], fds, trunc)
	})
}

// gone reads the master's end for a GONE report, within a deadline.
func (f *handoffFixture) gone(t *testing.T) uint64 {
	t.Helper()
	buf := make([]byte, 64)
	var got uint64
	testkit.WaitFor(t, "a GONE report", 5*time.Second, func() bool {
		n, err := unix.Read(f.master, buf)
		if err != nil {
			return false
		}
		v, ok := wire.ParseGone(buf[:n])
		got = v
		return ok
	})
	return got
}

func echoes(t *testing.T, c net.Conn) bool {
	t.Helper()
	if _, err := c.Write([]byte("hi")); err != nil {
		return false
	}
	b := make([]byte, 2)
	_, err := io.ReadFull(c, b)
	return err == nil && string(b) == "hi"
}

func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("client: read %d, %v; want the server's close", n, err)
	}
}

func TestHandoffAdopt(t *testing.T) {
	f := newHandoffFixture(t, true)
	cs, fds := f.conns(t, 3)
	f.send(t, "FDS ttt", fds)
	if !f.receive(t) {
		t.Fatal("take: an FDS message not taken as one")
	}
	for i, c := range cs {
		if !echoes(t, c) {
			t.Errorf("connection %d not served after the handoff", i)
		}
	}
	if got := looptest.OnLoop(t, f.l, f.l.Conns); got != 3 {
		t.Errorf("open connections: got %d, want 3", got)
	}
	// One closes: the next report says so.
	cs[0].Close()
	testkit.WaitFor(t, "the close", 5*time.Second, func() bool { return looptest.OnLoop(t, f.l, f.l.Conns) == 2 })
	looptest.OnLoop(t, f.l, func() bool { f.h.report(); return true })
	if got := f.gone(t); got != 1 {
		t.Errorf("GONE: got %d, want 1", got)
	}
	counts := looptest.OnLoop(t, f.l, func() [2]uint64 { return [2]uint64{f.h.received, f.h.refused} })
	if received, refused := counts[0], counts[1]; received != 3 || refused != 0 {
		t.Errorf("received %d refused %d, want 3 and 0", received, refused)
	}
}

// TestHandoffRefused: whatever is wrong with an FDS message, the fds that
// came with it are closed (the clients see it), counted, and reported gone.
func TestHandoffRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		msg     string
		fds     int
		oobFor  int // room for this many fds in the worker's oob buffer (0: the default)
		isFDs   bool
		refused uint64
	}{
		{name: "truncated (MSG_CTRUNC)", enabled: true, msg: "FDS ttt", fds: 3, oobFor: 1, isFDs: true, refused: 3},
		{name: "fewer fds than announced", enabled: true, msg: "FDS ttt", fds: 2, isFDs: true, refused: 3},
		{name: "malformed", enabled: true, msg: "FDS tx", fds: 2, isFDs: true, refused: 2},
		{name: "not in handoff mode", enabled: false, msg: "FDS t", fds: 1, isFDs: true, refused: 1},
		{name: "fds on another message", enabled: true, msg: wire.MsgStop, fds: 1, isFDs: false, refused: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHandoffFixture(t, tc.enabled)
			if tc.oobFor > 0 {
				f.h.oob = make([]byte, unix.CmsgSpace(4*tc.oobFor))
			}
			cs, fds := f.conns(t, tc.fds)
			f.send(t, tc.msg, fds)
			if got := f.receive(t); got != tc.isFDs {
				t.Errorf("take: got %v, want %v", got, tc.isFDs)
			}
			for _, c := range cs {
				closedByServer(t, c)
			}
			if got := looptest.OnLoop(t, f.l, f.l.Conns); got != 0 {
				t.Errorf("open connections: got %d, want 0", got)
			}
			if got := looptest.OnLoop(t, f.l, func() uint64 { return f.h.refused }); got != tc.refused {
				t.Errorf("refused: got %d, want %d", got, tc.refused)
			}
			if tc.enabled && tc.isFDs {
				if got := f.gone(t); got != tc.refused {
					t.Errorf("GONE: got %d, want %d", got, tc.refused)
				}
			}
		})
	}
}
