package loop

import (
	"os"

	"golang.org/x/sys/unix"
)

// Thin wrappers over the system calls the loop makes on its hot path. Each
// retries EINTR (a signal interrupted the call before it did anything, so
// retrying is always correct for these calls) and leaves other errnos to the
// caller, which decides per errno; errors that leave the loop are wrapped with
// the call's name by os.NewSyscallError.

func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeFD(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// accept4 accepts without asking for the peer address: the loop never needs it
// on the hot path (Conn.RemoteAddr asks getpeername when someone does), and
// unix.Accept4 would allocate a Sockaddr per connection.
func accept4(fd int) (int, error) {
	for {
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0,
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if errno == 0 {
			return int(nfd), nil
		}
		if errno != unix.EINTR {
			return -1, errno
		}
	}
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
