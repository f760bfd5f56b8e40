package reuseport

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Options for Listen.
type Options struct {
	// ReusePort sets SO_REUSEPORT, so several sockets can bind the same
	// address and the kernel spreads new connections over them.
	ReusePort bool
	// Backlog is listen(2)'s backlog; the kernel caps it at
	// net.core.somaxconn. Default 4096.
	Backlog int
}

// CheckAddr reports whether Listen can parse and resolve addr, without
// opening a socket: a start checks every address before it binds any.
func CheckAddr(addr string) error {
	_, _, _, err := resolve(addr)
	return err
}

// resolve parses addr into the socket address Listen binds.
func resolve(addr string) (sa unix.Sockaddr, family int, dualStack bool, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, false, fmt.Errorf("listen %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		if p, lerr := net.LookupPort("tcp", portStr); lerr == nil {
			port = p
		} else {
			return nil, 0, false, fmt.Errorf("listen %q: bad port %q", addr, portStr)
		}
	}
	family = unix.AF_INET6
	switch {
	case host == "":
		sa, dualStack = &unix.SockaddrInet6{Port: port}, true
	default:
		ip := net.ParseIP(host)
		if ip == nil {
			ta, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, portStr))
			if err != nil {
				return nil, 0, false, fmt.Errorf("listen %q: %w", addr, err)
			}
			ip = ta.IP
		}
		if ip4 := ip.To4(); ip4 != nil {
			family = unix.AF_INET
			s := &unix.SockaddrInet4{Port: port}
			copy(s.Addr[:], ip4)
			sa = s
		} else {
			s := &unix.SockaddrInet6{Port: port}
			copy(s.Addr[:], ip.To16())
			sa = s
		}
	}
	return sa, family, dualStack, nil
}

// Listen opens a non-blocking, close-on-exec TCP listening socket on addr
// ("host:port", "[::1]:port", ":port") and returns its fd. An empty host binds
// every address: [::] accepting IPv4 too where the machine has IPv6, 0.0.0.0
// otherwise. Port 0 picks a free port; BoundAddr tells which.
func Listen(addr string, opts Options) (int, error) {
	sa, family, dualStack, err := resolve(addr)
	if err != nil {
		return -1, err
	}
	if opts.Backlog <= 0 {
		opts.Backlog = 4096
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && dualStack && err == unix.EAFNOSUPPORT {
		// No IPv6 on this machine: an empty host means every IPv4 address.
		family, sa, dualStack = unix.AF_INET, &unix.SockaddrInet4{Port: sa.(*unix.SockaddrInet6).Port}, false
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("listen %q: %w", addr, os.NewSyscallError("socket", err))
	}
	fail := func(call string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %q: %w", addr, os.NewSyscallError(call, err))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt SO_REUSEADDR", err)
	}
	if opts.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt SO_REUSEPORT", err)
		}
	}
	if dualStack {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, opts.Backlog); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// BoundAddr returns the local address of a socket as "host:port".
func BoundAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port)), nil
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port)), nil
	case *unix.SockaddrUnix:
		return sa.Name, nil
	}
	return "", fmt.Errorf("getsockname: unsupported address family %T", sa)
}
