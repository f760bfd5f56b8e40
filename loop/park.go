package loop

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// AddOutside counts work done outside the loop that will come back to it
// through Post: goroutines a handler started, timers (time.AfterFunc) whose
// callbacks complete a response. Call it on the loop's goroutine, +1 when
// such work starts and -1 when it is done or moot.
//
// While the count is positive the loop waits through Go's netpoller (its
// epoll fd is itself pollable), parking its goroutine, instead of blocking
// the thread in epoll_wait: with GOMAXPROCS=1 the other goroutines and the
// runtime's timers get the processor at once rather than after the wait.
// With nothing outside, the loop keeps its raw waits (see Run), which cost
// the scheduler nothing.
func (l *Loop) AddOutside(delta int) { l.outside += delta }

// Outside returns the AddOutside count.
func (l *Loop) Outside() int { return l.outside }

// parkedWait is epoll_wait(timeout msec, -1 none) through Go's netpoller.
func (l *Loop) parkedWait(timeout int) (int, error) {
	if l.epRaw == nil {
		// The epoll fd goes into the runtime's own epoll set: non-blocking,
		// owned by an *os.File from now on (closeAll closes it through it).
		if err := unix.SetNonblock(l.epfd, true); err != nil {
			return 0, os.NewSyscallError("fcntl O_NONBLOCK", err)
		}
		l.epFile = os.NewFile(uintptr(l.epfd), "epoll")
		raw, err := l.epFile.SyscallConn()
		if err != nil {
			return 0, err
		}
		l.epRaw = raw
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(time.Duration(timeout) * time.Millisecond)
	}
	if err := l.epFile.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var n int
	var werr error
	err := l.epRaw.Read(func(fd uintptr) bool {
		n, werr = epollWait(int(fd), l.events, 0, true)
		if werr == unix.EINTR {
			werr = nil
			return false
		}
		// No event yet: park until the epoll fd is readable (the runtime
		// calls this again then) or the deadline passes.
		return n > 0 || werr != nil
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return n, werr
}

// closeEpoll closes the epoll fd, through its *os.File once the netpoller
// has it.
func (l *Loop) closeEpoll() {
	if l.epFile != nil {
		_ = l.epFile.Close()
		l.epFile, l.epRaw, l.epfd = nil, nil, -1
		return
	}
	if l.epfd >= 0 {
		_ = closeFD(l.epfd)
		l.epfd = -1
	}
}
