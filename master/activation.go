package master

import (
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Socket activation: under a systemd .socket unit the master is started with
// its listening sockets already open (LISTEN_FDS/LISTEN_PID, from fd 3). With
// Config.SocketActivation set, the master adopts them instead of opening
// Config.Addrs; this file is all prefork knows of it.
//
// Shared mode uses the inherited sockets as they are. Reuseport mode needs
// sockets with SO_REUSEPORT (ReusePort=yes in the .socket unit) to build a
// group from: an inherited socket that has it becomes slot 0's, and the
// master opens the other slots' on the same address. If a socket lacks it,
// or Linux refuses to let the master join its group (a socket made by
// another user), the master falls back to shared mode for all listeners and
// says so.

// listeners opens the listening sockets, or adopts systemd's; c.Mode may
// change to shared (see above).
func (c *Config) listeners() (*listeners, error) {
	var inherited []int
	if c.SocketActivation {
		var err error
		if inherited, err = activatedSockets(); err != nil {
			return nil, err
		}
	}
	if len(inherited) == 0 {
		if len(c.Addrs) == 0 {
			return nil, fmt.Errorf("--listen: no address, and no socket from systemd (LISTEN_FDS)")
		}
		return openListeners(c.Mode, c.Addrs)
	}
	c.Logger.Info("socket activation: adopting listeners", "count", len(inherited))
	want := c.Mode
	ls, mode, err := adoptListeners(want, inherited)
	if err != nil {
		closeFDs(inherited)
		return nil, err
	}
	c.Mode = mode
	if mode != want {
		c.Logger.Warn("inherited sockets lack SO_REUSEPORT (ReusePort=yes in the .socket unit): using shared mode")
		return ls, nil
	}
	if mode == ModeReusePort {
		// Join the inherited socket's group now: Linux refuses a socket
		// of another user (systemd made the socket as root).
		for k := 1; k < c.Workers; k++ {
			if _, err := ls.forSlot(k); err != nil {
				c.Logger.Warn("cannot add per-slot sockets to the inherited reuseport socket's group: using shared mode", "err", err)
				c.Mode = ModeShared
				return ls.asShared(inherited), nil
			}
		}
	}
	return ls, nil
}

// activatedSockets returns the listening sockets systemd passed (LISTEN_FDS
// for this pid), as close-on-exec fds the master owns, and clears the
// LISTEN_* variables. None: nil.
func activatedSockets() ([]int, error) {
	files := activation.Files(true)
	var fds []int
	for _, f := range files {
		// Own a duplicate, so the *os.File (and its finalizer) can go.
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("socket activation: %w", os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err))
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = closeFD(fd)
	}
}

// adoptListeners takes listening sockets the master inherited (systemd
// socket activation). Shared mode uses them as they are. Reuseport mode needs
// sockets with SO_REUSEPORT to build a group from: an inherited socket that
// has it becomes slot 0's and the master opens the other slots' on the same
// address; a socket without it cannot be joined, so the master falls back to
// shared mode for all listeners and says so (the returned mode).
func adoptListeners(mode Mode, fds []int) (*listeners, Mode, error) {
	if mode == ModeReusePort {
		for _, fd := range fds {
			if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); err != nil || v == 0 {
				mode = ModeShared
			}
		}
	}
	ls := &listeners{mode: mode, slots: map[int][]int{}}
	for _, fd := range fds {
		acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil || acc != 1 {
			return nil, mode, fmt.Errorf("inherited fd %d is not a listening socket", fd)
		}
		if err := ls.add(fd); err != nil {
			return nil, mode, err
		}
	}
	return ls, mode, nil
}

// asShared closes every socket the master opened itself and returns shared
// mode listeners over the inherited ones.
func (ls *listeners) asShared(inherited []int) *listeners {
	keep := map[int]bool{}
	for _, fd := range inherited {
		keep[fd] = true
	}
	for k, fds := range ls.slots {
		for _, fd := range fds {
			if !keep[fd] {
				_ = closeFD(fd)
			}
		}
		delete(ls.slots, k)
	}
	return &listeners{mode: ModeShared, addrs: ls.addrs, shared: inherited, slots: map[int][]int{}}
}
