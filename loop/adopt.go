package loop

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotAdopted is returned by AddConn when the loop did not take the
// connection (it has closed the fd).
var ErrNotAdopted = errors.New("loop: connection not adopted")

// AddConn adopts fd, a connected stream socket this loop did not accept
// itself (prefork's handoff mode: the master accepts and passes the fd over
// the control socket with SCM_RIGHTS), and serves it exactly as if it had
// accepted it: non-blocking, TCP_NODELAY when tcp, in the epoll set
// edge-triggered (input that arrived before is reported at once), counted in
// Stats.Accepted and Conns, Handler.OnOpen, the idle timeout. During a
// graceful stop it is drained like the connections already open (its input
// read, Drainer.OnDrain).
//
// The loop owns fd from the call on, whatever the result: on an error it has
// closed it. fd must be close-on-exec already (received with
// MSG_CMSG_CLOEXEC). Call it on the loop's thread (a Watch callback, a
// timer, a task given to Post).
func (l *Loop) AddConn(fd int, tcp bool) error {
	if fd < 0 {
		return fmt.Errorf("loop: adopt fd %d: %w", fd, unix.EBADF)
	}
	if l.done {
		_ = closeFD(fd)
		return fmt.Errorf("loop: adopt fd %d: loop stopped: %w", fd, ErrNotAdopted)
	}
	// accept4 gives the loop's own connections SOCK_NONBLOCK; an fd that
	// crossed a socket keeps the flags of the open file, which the sender's
	// accept chose, so set it here rather than trust it.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = closeFD(fd)
		return fmt.Errorf("loop: adopt fd %d: %w", fd, os.NewSyscallError("fcntl O_NONBLOCK", err))
	}
	before := l.stats.Accepted
	l.openConn(fd, tcp) // on failure it has logged and closed fd
	if l.stats.Accepted == before {
		return fmt.Errorf("loop: adopt fd %d: %w", fd, ErrNotAdopted)
	}
	if l.draining {
		l.drainAdopted(fd)
	}
	return nil
}

// drainAdopted does for a connection adopted during a graceful stop what
// beginDrain did for the others: read what is waiting, then OnDrain.
func (l *Loop) drainAdopted(fd int) {
	c := l.conns[fd]
	if c == nil || c.flags&(fClosing|fClosed) != 0 {
		return // OnOpen closed it
	}
	c.flags |= fReadable
	l.readConn(c)
	if d, ok := l.h.(Drainer); ok && c.flags&(fClosing|fClosed) == 0 {
		d.OnDrain(c)
	}
}
