package master

import (
	"fmt"
	"sort"

	"github.com/prefork/prefork/wire"
)

// reloadBusy reports whether a reload's replacement is starting (a
// recycle's does not count: recycle.go).
func (m *Master) reloadBusy() bool {
	for _, s := range m.slots {
		if (s.next != nil && s.next.reload) || (s.cur != nil && s.cur.reload) {
			return true
		}
	}
	return false
}

// reload starts a rolling reload: slot by slot, a new worker is started and,
// once it is ready, the old one is drained. A reload during a reload starts
// over with every slot, after the replacement now starting.
func (m *Master) reload() {
	if m.stopping {
		return
	}
	m.reloads++
	m.metrics.Reloads.Inc()
	m.notify.reloading()
	m.reloadQueue = m.reloadQueue[:0]
	for k := range m.slots {
		m.reloadQueue = append(m.reloadQueue, k)
	}
	sort.Ints(m.reloadQueue)
	if !m.reloadBusy() {
		m.reloadNext()
	}
}

// reloadNext starts the replacement for the next slot in the reload queue.
func (m *Master) reloadNext() {
	for len(m.reloadQueue) > 0 && !m.stopping {
		k := m.reloadQueue[0]
		if s := m.slots[k]; s != nil && s.next != nil && s.next.recycle != "" {
			// A recycle's replacement, started before the HUP, is starting
			// for this slot: wait for it (its READY or its exit calls
			// reloadResume), then replace it too, as the reload must
			// replace every worker started before it.
			return
		}
		m.reloadQueue = m.reloadQueue[1:]
		s := m.slots[k]
		if s == nil || s.next != nil {
			continue
		}
		if s.cur == nil {
			continue // waiting to restart: its restart will run the new code
		}
		p := m.startWorker(s)
		if p != nil && s.next == p {
			p.reload = true
			return // READY (onControl) or its exit (onExit) calls us again
		}
		if p == nil && m.upgrading {
			m.rollback(fmt.Sprintf("cannot start the new binary's worker for slot %d", k))
			return
		}
	}
	if len(m.reloadQueue) == 0 && !m.reloadBusy() && !m.stopping {
		m.log.Info("reload done")
		m.upgradeReplaced()
		m.notify.ready()
	}
}

// scale changes the number of worker slots by adding slot N or retiring the
// highest slot.
func (m *Master) scale(n int) {
	if m.stopping || n < 1 {
		if n < 1 {
			m.log.Warn("cannot scale below one worker")
		}
		return
	}
	for m.desired < n {
		k := m.desired
		m.desired++
		m.log.Info("scaling up", "workers", m.desired)
		m.startSlot(k)
	}
	for m.desired > n {
		m.desired--
		k := m.desired
		m.log.Info("scaling down", "workers", m.desired, "retiring_slot", k)
		m.retire(k)
	}
}

// retire removes slot k: new connections are steered away from its sockets,
// its worker accepts what is queued and drains, and its sockets are closed
// when it has exited.
func (m *Master) retire(k int) {
	s := m.slots[k]
	delete(m.slots, k)
	m.reloadQueue = removeInt(m.reloadQueue, k)
	if s.restartTimer != nil {
		s.restartTimer.Stop()
		s.restartTimer = nil
	}
	if s.cur == nil && s.next == nil && m.cfg.Mode == ModeReusePort {
		// The slot's worker is dead, backing off after a crash, but its
		// socket may hold connections queued for it: closing the socket
		// would reset them. Start a worker at once to accept what is
		// queued and drain, as any retiring slot's worker does.
		m.log.Info("retiring a slot without a worker: starting one to take its queue", "slot", k)
		m.startWorker(s)
	}
	fds, err := m.ls.retireSlot(k)
	if err != nil {
		m.log.Error("steering away from retiring slot", "slot", k, "err", err)
	}
	r := &retired{slot: k, fds: fds}
	wasReloading := (s.next != nil && s.next.reload) || (s.cur != nil && s.cur.reload)
	for _, p := range []*proc{s.next, s.cur} {
		if p != nil {
			p.retired = r
			r.procs++
			m.stopProc(p, wire.MsgRetire)
		}
	}
	if r.procs == 0 {
		m.closeRetired(r) // no worker holds the queue: nobody can drain it
	}
	if wasReloading {
		// The reload was waiting for this slot's replacement: go on.
		m.reloadNext()
	} else {
		m.reloadResume() // it may have waited on this slot's recycle
	}
}

// retired is a retired slot's sockets, closed when its last worker exits.
type retired struct {
	slot  int
	fds   []int
	procs int
}

func (m *Master) closeRetired(r *retired) {
	if err := m.ls.closeRetired(r.fds); err != nil {
		m.log.Error("closing retired slot's sockets", "slot", r.slot, "err", err)
	}
}

func removeInt(xs []int, v int) []int {
	out := xs[:0]
	for _, x := range xs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
