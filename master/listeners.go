package master

import (
	"errors"
	"fmt"

	"github.com/prefork/prefork/reuseport"
	"github.com/prefork/prefork/wire"
)

// listeners owns the master's listening sockets.
//
// Shared mode: shared[a] is the one socket of address a, inherited by every
// worker. Handoff mode: shared[a] too, but no worker inherits it: the
// master's acceptor accepts on it. Reuseport mode: slots[k][a] is slot k's socket for address a, and
// groups[a] tracks address a's SO_REUSEPORT group so a slot can be retired
// without losing queued connections.
type listeners struct {
	mode   Mode
	addrs  []string // as bound (port 0 resolved)
	shared []int
	slots  map[int][]int
	groups []*reuseport.Group
}

func openListeners(mode Mode, addrs []string) (*listeners, error) {
	ls := &listeners{mode: mode, slots: map[int][]int{}}
	for _, a := range addrs {
		fd, err := reuseport.Listen(a, reuseport.Options{ReusePort: mode == ModeReusePort})
		if err != nil {
			ls.closeAll()
			return nil, err
		}
		if err := ls.add(fd); err != nil {
			_ = closeFD(fd)
			ls.closeAll()
			return nil, err
		}
	}
	return ls, nil
}

// add records a listening socket of a new address: the shared socket, or in
// reuseport mode the first member of the address's group, slot 0's socket.
func (ls *listeners) add(fd int) error {
	bound, err := reuseport.BoundAddr(fd)
	if err != nil {
		return err
	}
	if ls.mode != ModeReusePort {
		ls.addrs = append(ls.addrs, bound)
		ls.shared = append(ls.shared, fd)
		return nil
	}
	g := &reuseport.Group{}
	if err := g.Add(fd); err != nil {
		return err
	}
	ls.addrs = append(ls.addrs, bound)
	ls.groups = append(ls.groups, g)
	ls.slots[0] = append(ls.slots[0], fd)
	return nil
}

// forSlot returns the fds worker slot k inherits, opening the slot's
// reuseport sockets if it has none yet.
func (ls *listeners) forSlot(k int) ([]int, error) {
	switch ls.mode {
	case ModeShared:
		return ls.shared, nil
	case ModeHandoff:
		return nil, nil // connections arrive over the control socket
	}
	if fds, ok := ls.slots[k]; ok {
		return fds, nil
	}
	var fds []int
	for a, addr := range ls.addrs {
		fd, err := reuseport.Listen(addr, reuseport.Options{ReusePort: true})
		if err == nil {
			err = ls.groups[a].Add(fd)
		}
		if err != nil {
			for i, f := range fds {
				_ = ls.groups[i].Close(f)
			}
			return nil, fmt.Errorf("open slot %d listeners: %w", k, err)
		}
		fds = append(fds, fd)
	}
	ls.slots[k] = fds
	return fds, nil
}

// retireSlot detaches slot k's sockets from the slot and steers new
// connections away from them; they stay open so the slot's worker can accept
// what is queued, and closeRetired closes them after. Shared mode: nothing.
func (ls *listeners) retireSlot(k int) ([]int, error) {
	fds := ls.slots[k]
	delete(ls.slots, k)
	var errs []error
	for a, fd := range fds {
		errs = append(errs, ls.groups[a].Retire(fd))
	}
	return fds, errors.Join(errs...)
}

// pauseSlot steers new connections away from slot k's sockets while it has
// no worker (a crash backoff); what is queued stays for the next worker.
// It fails, changing nothing for that address, when slot k is the only
// live member left. Shared and handoff modes: nothing.
func (ls *listeners) pauseSlot(k int) error {
	var errs []error
	for a, fd := range ls.slots[k] {
		errs = append(errs, ls.groups[a].Retire(fd))
	}
	return errors.Join(errs...)
}

// resumeSlot undoes pauseSlot once slot k has a worker again.
func (ls *listeners) resumeSlot(k int) error {
	var errs []error
	for a, fd := range ls.slots[k] {
		errs = append(errs, ls.groups[a].Revive(fd))
	}
	return errors.Join(errs...)
}

// closeRetired closes a retired slot's sockets, after its worker drained them.
func (ls *listeners) closeRetired(fds []int) error {
	var errs []error
	for a, fd := range fds {
		errs = append(errs, ls.groups[a].Close(fd))
	}
	return errors.Join(errs...)
}

// describe returns the Spec's listener list: the sockets a worker inherits
// (none in handoff mode).
func (ls *listeners) describe() []wire.Listener {
	if ls.mode == ModeHandoff {
		return nil
	}
	out := make([]wire.Listener, len(ls.addrs))
	for i, a := range ls.addrs {
		out[i] = wire.Listener{Addr: a}
	}
	return out
}

// closeAll closes every socket the master holds (at stop).
func (ls *listeners) closeAll() {
	for _, fd := range ls.shared {
		_ = closeFD(fd)
	}
	ls.shared = nil
	for k, fds := range ls.slots {
		for _, fd := range fds {
			_ = closeFD(fd)
		}
		delete(ls.slots, k)
	}
}
