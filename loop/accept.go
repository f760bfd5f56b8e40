package loop

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

type listener struct {
	fd    int
	tcp   bool
	added bool
	excl  bool
}

// AddListener makes the loop accept connections from the listening socket fd
// and takes ownership of it: the loop closes its copy when it stops accepting.
// With exclusive, the fd is registered with EPOLLEXCLUSIVE, for a listener
// shared by several processes' loops (only some of them are woken per
// connection). Call it before Run, or on the loop thread.
func (l *Loop) AddListener(fd int, exclusive bool) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	ln := listener{fd: fd, excl: exclusive}
	if sa, err := unix.Getsockname(fd); err == nil {
		switch sa.(type) {
		case *unix.SockaddrInet4, *unix.SockaddrInet6:
			ln.tcp = true
		}
	}
	if err := l.registerListener(&ln); err != nil {
		return err
	}
	l.listeners = append(l.listeners, ln)
	return nil
}

func (l *Loop) registerListener(ln *listener) error {
	ev := uint32(listenerEvents)
	if ln.excl {
		ev |= unix.EPOLLEXCLUSIVE
	}
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd,
		&unix.EpollEvent{Events: ev, Fd: int32(ln.fd), Pad: tagListener}); err != nil {
		return fmt.Errorf("loop: add listener fd %d: %w", ln.fd, err)
	}
	ln.added = true
	return nil
}

// acceptReady accepts up to AcceptBudget connections from a readable listener.
func (l *Loop) acceptReady(lfd int) { l.accept(lfd, l.cfg.AcceptBudget) }

// accept accepts up to budget connections from listener lfd.
func (l *Loop) accept(lfd int, budget int) {
	var ln *listener
	for i := range l.listeners {
		if l.listeners[i].fd == lfd {
			ln = &l.listeners[i]
		}
	}
	if ln == nil {
		return
	}
	for i := 0; i < budget; i++ {
		if l.cfg.MaxConns > 0 && l.nconns >= l.cfg.MaxConns {
			l.pauseAccept()
			return
		}
		fd, err := accept4(lfd)
		if err == nil {
			l.openConn(fd, ln.tcp)
			continue
		}
		switch err {
		case unix.EAGAIN:
			// Queue empty. On the first try this wake-up was wasted: another
			// process sharing the listener took the connection (thundering herd).
			if i == 0 {
				l.stats.AcceptEmpty++
			}
			return
		case unix.ECONNABORTED:
			// The peer reset a queued connection before we took it; the next
			// one is unaffected.
		case unix.EMFILE, unix.ENFILE:
			// Out of fds. The pending connection keeps the level-triggered
			// listener readable, so doing nothing would spin the loop: give up
			// the spare fd, accept the connection and close it (the client sees
			// a close rather than a hang), then take the spare back.
			l.shedOne(lfd, err)
		case unix.EINVAL:
			// The socket stopped listening (the master shut a retired
			// reuseport socket down): it will never accept again and would
			// stay readable, so drop it rather than spin.
			l.log.Warn("listener stopped listening; removing it", "fd", lfd)
			l.removeListener(lfd)
			return
		case unix.ENOBUFS, unix.ENOMEM:
			// Kernel memory pressure: stop accepting for this turn; the
			// listener stays registered and is tried again next turn.
			l.logAcceptError(err)
			return
		default:
			// accept(2): Linux passes pending network errors of the new socket
			// (EPROTO, ENETDOWN, EHOSTUNREACH, ENOPROTOOPT, ...) and firewall
			// refusals (EPERM) as accept errors; they concern that connection
			// only, so retry like EAGAIN does, as the man page advises.
			l.logAcceptError(err)
		}
	}
}

// pauseAccept takes the listeners out of the epoll set at MaxConns. They
// are level-triggered, so leaving them in would wake the loop for every
// connection it will not take. Queued connections wait in the kernel's
// backlog (or, on a shared listener, go to another worker), instead of
// being accepted and reset.
func (l *Loop) pauseAccept() {
	if l.paused {
		return
	}
	l.paused = true
	l.stats.AcceptPaused++
	for i := range l.listeners {
		ln := &l.listeners[i]
		if !ln.added {
			continue
		}
		// EPOLL_CTL_DEL, not MOD: an EPOLLEXCLUSIVE registration cannot be
		// modified (EINVAL).
		if err := epollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil); err != nil {
			l.log.Warn("cannot pause a listener", "fd", ln.fd, "err", err)
			continue
		}
		ln.added = false
	}
	l.log.Debug("at --max-conns: accepting paused", "conns", l.nconns)
}

// resumeAccept puts the listeners back once a connection has closed below
// MaxConns; a listener with connections queued is reported at once.
func (l *Loop) resumeAccept() {
	l.paused = false
	for i := range l.listeners {
		ln := &l.listeners[i]
		if ln.added {
			continue
		}
		if err := l.registerListener(ln); err != nil {
			l.log.Warn("cannot resume a listener", "fd", ln.fd, "err", err)
		}
	}
}

func (l *Loop) logAcceptError(err error) {
	l.stats.AcceptErrors++
	if l.stats.AcceptErrors&(l.stats.AcceptErrors-1) == 0 { // log the 1st, 2nd, 4th, 8th...
		l.log.Warn("accept failed", "err", os.NewSyscallError("accept4", err), "count", l.stats.AcceptErrors)
	}
}

// shedOne accepts and closes one connection using the spare fd's slot. It
// reports whether one was waiting.
func (l *Loop) shedOne(lfd int, cause error) bool {
	if l.spare >= 0 {
		_ = closeFD(l.spare)
		l.spare = -1
	}
	fd, err := accept4(lfd)
	if err == nil {
		_ = closeFD(fd)
		l.stats.AcceptShed++
		l.logAcceptError(cause)
	}
	if err := l.openSpare(); err != nil {
		l.log.Warn("cannot reopen spare fd", "err", err)
	}
	return err == nil
}

func (l *Loop) openSpare() error {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open /dev/null", err)
	}
	l.spare = fd
	return nil
}

func (l *Loop) openConn(fd int, tcp bool) {
	if tcp {
		// Responses leave as whole writes, so Nagle only adds delay to a
		// pipelined tail. Failure is harmless (the peer may already be gone).
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: connEvents, Fd: int32(fd), Pad: tagConn}); err != nil {
		l.log.Warn("cannot register connection", "err", err)
		_ = closeFD(fd)
		return
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, len(l.conns)+64)...)
	}
	c := &Conn{loop: l, fd: int32(fd), active: l.now}
	l.conns[fd] = c
	l.nconns++
	l.stats.Accepted++
	l.h.OnOpen(c)
}
