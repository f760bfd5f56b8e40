package reuseport

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testkit"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// sockets owns listening fds for a test and closes, at cleanup, those the
// test has not closed (or had a Group close) itself. Closing an fd twice could
// close an unrelated file that reused the number, so tests call forget.
type sockets struct {
	t    *testing.T
	open map[int]bool
}

func newSockets(t *testing.T) *sockets {
	s := &sockets{t: t, open: map[int]bool{}}
	t.Cleanup(func() {
		for fd := range s.open {
			unix.Close(fd)
		}
	})
	return s
}

// listen opens n reuseport listeners on addr (the first binds it, port 0
// picking a port; the rest bind the address the first got), in join order.
func (s *sockets) listen(addr string, n int) []int {
	s.t.Helper()
	var fds []int
	for range n {
		fd, err := Listen(addr, Options{ReusePort: true})
		if err != nil {
			s.t.Fatalf("Listen(%q): %v", addr, err)
		}
		s.open[fd] = true
		fds = append(fds, fd)
		if addr, err = BoundAddr(fd); err != nil {
			s.t.Fatalf("BoundAddr: %v", err)
		}
	}
	return fds
}

func (s *sockets) forget(fd int) { delete(s.open, fd) }

// addr returns the address fd is bound to.
func addrOf(t *testing.T, fd int) string {
	t.Helper()
	a, err := BoundAddr(fd)
	if err != nil {
		t.Fatalf("BoundAddr(%d): %v", fd, err)
	}
	return a
}

// dial makes n connections to addr and closes them at cleanup. On loopback a
// connection is complete, and queued on some listener, about when Dial
// returns; waitQueued tells for sure.
func dial(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, testkit.Dial(t, addr))
	}
	return conns
}

// queued returns the length of a listener's accept queue (TCP_INFO's
// tcpi_unacked is sk_ack_backlog for a listener).
func queued(t *testing.T, fd int) int {
	t.Helper()
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatalf("getsockopt TCP_INFO: %v", err)
	}
	return int(ti.Unacked)
}

// waitQueued waits until the accept queues of fds hold want connections in
// all, and returns each queue's length.
func waitQueued(t *testing.T, fds []int, want int) []int {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got, sum := make([]int, len(fds)), 0
		for i, fd := range fds {
			got[i] = queued(t, fd)
			sum += got[i]
		}
		if sum == want {
			return got
		}
		if sum > want || time.Now().After(deadline) {
			t.Fatalf("accept queues hold %d connections (%v), want %d", sum, got, want)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded by deadline
	}
}

// accepted is a connection taken from a listener.
type accepted struct {
	fd   int
	peer netip.AddrPort
}

// acceptFrom accepts, without blocking, everything queued on fd. The caller
// closes the accepted fds.
func acceptFrom(t *testing.T, fd int) []accepted {
	t.Helper()
	var got []accepted
	for {
		nfd, sa, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
			got = append(got, accepted{fd: nfd, peer: sockaddrPort(sa)})
		case err == unix.EAGAIN:
			return got
		case err == unix.EINTR || err == unix.ECONNABORTED:
		default:
			t.Fatalf("accept4: %v", err)
		}
	}
}

// acceptAll accepts from fds until want connections have been taken in all,
// waiting for readiness with poll(2), and fails the test at the deadline or
// if more than want arrive. It returns the connections taken from each fd.
func acceptAll(t *testing.T, fds []int, want int) [][]accepted {
	t.Helper()
	got, total := make([][]accepted, len(fds)), 0
	deadline := time.Now().Add(testTimeout)
	for {
		for i, fd := range fds {
			a := acceptFrom(t, fd)
			got[i] = append(got[i], a...)
			total += len(a)
		}
		if total > want {
			t.Fatalf("accepted %d connections, want %d", total, want)
		}
		if total == want {
			return got
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("accepted %d connections by the deadline, want %d", total, want)
		}
		pfds := make([]unix.PollFd, len(fds))
		for i, fd := range fds {
			pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		if _, err := unix.Poll(pfds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		}
	}
}

// counts returns how many connections each listener accepted, closing them.
func counts(got [][]accepted) []int {
	n := make([]int, len(got))
	for i, as := range got {
		n[i] = len(as)
		for _, a := range as {
			unix.Close(a.fd)
		}
	}
	return n
}

// spread makes n connections to fds' address and returns how many each of
// fds accepted.
func spread(t *testing.T, fds []int, n int) []int {
	t.Helper()
	conns := dial(t, addrOf(t, fds[0]), n)
	got := acceptAll(t, fds, n)
	// Clients close first, so TIME_WAIT stays on the client side, where
	// connect(2) picking a port sees it.
	for _, conn := range conns {
		conn.Close()
	}
	return counts(got)
}

func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func connPort(c net.Conn) netip.AddrPort {
	ap := c.LocalAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// exchange checks that client and the server side of the same connection (an
// accepted fd, which exchange closes) can trade a byte each way, and that the
// client then reads EOF: no reset anywhere.
func exchange(t *testing.T, client net.Conn, server int) error {
	t.Helper()
	f := os.NewFile(uintptr(server), "accepted")
	sc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	defer sc.Close()
	client.SetDeadline(deadline())
	sc.SetDeadline(deadline())
	buf := make([]byte, 1)
	if _, err := client.Write([]byte{'c'}); err != nil {
		return err
	}
	if _, err := sc.Read(buf); err != nil || buf[0] != 'c' {
		return errors.Join(errors.New("server read"), err)
	}
	if _, err := sc.Write([]byte{'s'}); err != nil {
		return err
	}
	sc.Close()
	if _, err := client.Read(buf); err != nil || buf[0] != 's' {
		return errors.Join(errors.New("client read"), err)
	}
	if n, err := client.Read(buf); n != 0 || err == nil || err != io.EOF {
		return errors.Join(errors.New("client read after server close: want EOF"), err)
	}
	return nil
}

// deadline returns the deadline for one bounded wait.
func deadline() time.Time { return time.Now().Add(testTimeout) }
