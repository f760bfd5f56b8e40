package reuseport

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/prefork/prefork/internal/testenv"
	"golang.org/x/sys/unix"
)

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestListen(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		wantHost string // BoundAddr's host
		dial     []string
		ipv6     bool
	}{
		{addr: "127.0.0.1:0", wantHost: "127.0.0.1", dial: []string{"127.0.0.1"}},
		{addr: "[::1]:0", wantHost: "::1", dial: []string{"::1"}, ipv6: true},
		// Empty host: [::] accepting IPv4 too.
		{addr: ":0", wantHost: "::", dial: []string{"127.0.0.1", "::1"}, ipv6: true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if tc.ipv6 && !hasIPv6Loopback() {
				testenv.Skip(t, "no IPv6 loopback")
			}
			for _, reuse := range []bool{false, true} {
				fd, err := Listen(tc.addr, Options{ReusePort: reuse})
				if err != nil {
					t.Fatalf("Listen(%q, ReusePort %v): %v", tc.addr, reuse, err)
				}
				defer unix.Close(fd)
				bound := addrOf(t, fd)
				host, port, err := net.SplitHostPort(bound)
				if err != nil || host != tc.wantHost || port == "0" {
					t.Errorf("BoundAddr: got %q, want host %q and a port", bound, tc.wantHost)
				}
				fdFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err != nil {
					t.Fatal(err)
				}
				if fdFlags&unix.FD_CLOEXEC == 0 {
					t.Errorf("F_GETFD: got %#x, want FD_CLOEXEC set", fdFlags)
				}
				flFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
				if err != nil {
					t.Fatal(err)
				}
				if flFlags&unix.O_NONBLOCK == 0 {
					t.Errorf("F_GETFL: got %#x, want O_NONBLOCK set", flFlags)
				}
				rp, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT)
				if err != nil {
					t.Fatal(err)
				}
				if got := rp != 0; got != reuse {
					t.Errorf("SO_REUSEPORT: got %v, want %v", got, reuse)
				}
				if got := queued(t, fd); got != 0 {
					t.Errorf("new listener queue: got %d, want 0", got)
				}
				for _, h := range tc.dial {
					c := dial(t, net.JoinHostPort(h, port), 1)[0]
					if got := counts(acceptAll(t, []int{fd}, 1)); got[0] != 1 {
						t.Errorf("dial %s: accepted %d, want 1", h, got[0])
					}
					c.Close()
				}
			}
		})
	}
}

func TestListenBacklog(t *testing.T) {
	fd, err := Listen("127.0.0.1:0", Options{Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	// For a listener tcpi_sacked is sk_max_ack_backlog.
	if got, want := ti.Sacked, uint32(16); got != want {
		t.Errorf("backlog: got %d, want %d", got, want)
	}
}

func TestListenReusePortSharesPort(t *testing.T) {
	fds := newSockets(t).listen("127.0.0.1:0", 2)
	if a, b := addrOf(t, fds[0]), addrOf(t, fds[1]); a != b {
		t.Errorf("second listener bound %s, want %s", b, a)
	}
}

func TestListenErrors(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"127.0.0.1", "missing port"},
		{"127.0.0.1:99999", "bad port"},
		{"127.0.0.1:-1", "bad port"},
		{"127.0.0.1:no-such-service", "bad port"},
		{"[::1:0", "missing ']'"},
	} {
		fd, err := Listen(tc.addr, Options{ReusePort: true})
		if err == nil {
			unix.Close(fd)
			t.Errorf("Listen(%q): got fd %d, want an error", tc.addr, fd)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%q): got error %v, want one containing %q", tc.addr, err, tc.want)
		}
	}
}

// TestListenInUse checks that a second listener needs SO_REUSEPORT on both,
// and that the bind error comes back as a wrapped *os.SyscallError.
func TestListenInUse(t *testing.T) {
	for _, tc := range []struct{ first, second bool }{{false, false}, {true, false}, {false, true}} {
		fd, err := Listen("127.0.0.1:0", Options{ReusePort: tc.first})
		if err != nil {
			t.Fatal(err)
		}
		fd2, err := Listen(addrOf(t, fd), Options{ReusePort: tc.second})
		var se *os.SyscallError
		if err == nil {
			unix.Close(fd2)
		}
		if !errors.As(err, &se) || se.Syscall != "bind" || !errors.Is(err, unix.EADDRINUSE) {
			t.Errorf("ReusePort %v then %v: got %v, want bind: EADDRINUSE as *os.SyscallError", tc.first, tc.second, err)
		}
		unix.Close(fd)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true}, {":8080", true}, {"[::1]:80", true}, {"localhost:http", true},
		{"127.0.0.1", false}, {"127.0.0.1:70000", false}, {"127.0.0.1:nosuchservice", false},
		{"no.such.host.invalid:80", false}, {"", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if err := CheckAddr(tc.addr); (err == nil) != tc.ok {
				t.Errorf("CheckAddr(%q): got %v, want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}
