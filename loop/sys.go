package loop

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thin wrappers over the system calls the loop makes on its hot path. read,
// write and accept4 retry EINTR (a signal interrupted the call before it did
// anything, so retrying is always correct for these calls); epollWait returns
// it, and Loop.Run yields to the scheduler before waiting again (see below);
// close is never retried (closeFD). Other errnos are left to the caller, which
// decides per errno; errors that leave the loop are wrapped with the call's
// name by os.NewSyscallError.
//
// read, write, accept4 and a zero-timeout epoll_wait never block here (every
// fd is non-blocking), so they go through unix.RawSyscall: it skips the Go
// scheduler's entersyscall/exitsyscall. With unix.Syscall the runtime marks
// the loop's goroutine as "in a syscall" for every call, and its monitor
// thread (sysmon) hands the P to another thread when a call looks slow, then
// the loop takes it back: futex and nanosleep calls that grow with the request
// rate, on the cores that serve the requests (see BENCHMARKS.md).
//
// A blocking epoll_wait is raw too while the loop is hot (see Loop.Run): the
// waits are short, and telling the scheduler about each one kept waking
// sysmon under load, each wake-up a context switch and a futex on a core the
// load generator needs (see BENCHMARKS.md). The runtime still gets the thread
// when it wants it: to stop the world or preempt, it signals the thread
// (SIGURG), the wait returns EINTR, and the loop yields (Loop.Run). A cold
// loop blocks through unix.EpollWait, so an idle worker lets sysmon sleep and
// is not signalled every 10 ms for running too long.

var zero uintptr

func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return unsafe.Pointer(&zero)
	}
	return unsafe.Pointer(&p[0])
}

func errnoErr(e unix.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return unix.EAGAIN // the common case, without boxing a new interface value
	}
	return e
}

func readFD(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
		if e != unix.EINTR {
			if e != 0 {
				return 0, errnoErr(e)
			}
			return int(n), nil
		}
	}
}

func writeFD(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
		if e != unix.EINTR {
			if e != 0 {
				return 0, errnoErr(e)
			}
			return int(n), nil
		}
	}
}

// accept4 accepts without asking for the peer address: the loop never needs it
// on the hot path (Conn.RemoteAddr asks getpeername when someone does), and
// unix.Accept4 would allocate a Sockaddr per connection.
func accept4(fd int) (int, error) {
	for {
		nfd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if errno == 0 {
			return int(nfd), nil
		}
		if errno != unix.EINTR {
			return -1, errno
		}
	}
}

// epollWait waits for events, at most msec milliseconds (-1: forever, 0: a
// poll). raw makes the call without telling the scheduler (see above); the
// caller keeps raw waits short.
func epollWait(epfd int, events []unix.EpollEvent, msec int, raw bool) (int, error) {
	if !raw {
		return unix.EpollWait(epfd, events, msec)
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	if err := unix.EpollCtl(epfd, op, fd, ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// closeFD closes fd once. close(2) is never retried, not even on EINTR: on
// Linux the descriptor is released before any error is reported, so a retry
// could close a descriptor another part of the program has just been given
// (the standard library's internal/poll makes the same choice).
func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// sendMore is send(2) with MSG_MORE (and MSG_DONTWAIT): the kernel may hold
// p for the data that follows. EINTR is retried.
func sendMore(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)),
			uintptr(unix.MSG_MORE|unix.MSG_DONTWAIT), 0, 0)
		if e != unix.EINTR {
			if e != 0 {
				return 0, errnoErr(e)
			}
			return int(n), nil
		}
	}
}
