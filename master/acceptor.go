package master

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// The acceptor is handoff mode's data path in the master: one goroutine
// running a raw epoll loop over the listening sockets and an eventfd. Each
// wake-up accepts what is queued (up to acceptBudget), places every new
// connection on the worker with the fewest open connections (peer.load),
// sends each worker its share in one sendmsg per MaxHandoffFDs fds (FDS +
// SCM_RIGHTS), and closes the master's copies at once. The supervisor talks
// to it through commands (do, call): a worker becomes a target when it is
// READY and stops being one, synchronously, before it is told to stop, so
// no FDS message follows a STOP on its socket.
//
// Nothing here blocks: sendmsg is MSG_DONTWAIT, and a worker whose socket is
// full (EAGAIN) is skipped for fullBackoff while its connections go to the
// others. With no worker to take connections (all starting, or full) the
// listeners are taken out of the epoll set, so new connections wait in the
// kernel's accept queue as they would for a worker in the other modes.
type acceptor struct {
	log *slog.Logger
	met *metrics.Handoff

	epfd   int
	wakefd int
	spare  int // a reserved fd, given up to shed a connection on EMFILE
	lns    []acceptListener
	armed  bool

	// mu guards cmds, woken and closed: do runs on any goroutine.
	mu     sync.Mutex
	cmds   []func()
	woken  bool
	closed bool // run has returned: commands are refused
	done   chan struct{}

	// Owned by run's goroutine (and by tests that drive place directly).
	peers    []*peer
	rr       int // round-robin cursor: where the next least-loaded search starts
	pending  []pendingConn
	stopping bool
	// handingOver: an upgrade's exec is next; hand out what is held and
	// end, leaving the kernel's queue to the next image's acceptor.
	handingOver bool
	now         time.Time
	events      []unix.EpollEvent
	msg         []byte
	run1        []func()
	closeFD     func(int) error // the master's copy after a send; a seam for tests
}

type acceptListener struct {
	fd       int
	kind     byte // wire.ConnTCP or wire.ConnStream
	readable bool // reported by epoll and not drained yet
	dead     bool // stopped listening: out of the epoll set
}

// pendingConn is an accepted connection not yet handed to a worker.
type pendingConn struct {
	fd    int
	kind  byte
	since time.Time
	// to is the peer it is assigned to in this placement round (nil: none).
	to *peer
}

const (
	// acceptBudget bounds the connections accepted per wake-up, so a flood
	// is handed out in rounds of a few sendmsg per worker.
	acceptBudget = 4 * wire.MaxHandoffFDs
	// maxPending bounds what the acceptor holds when no worker can take
	// connections; past it, it stops accepting.
	maxPending = 4096
	// pendingHold is how long an accepted connection may wait for a worker
	// (its worker died and no other is ready) before it is closed.
	pendingHold = 5 * time.Second
	// fullBackoff is how long a worker whose socket was full is skipped.
	fullBackoff = 5 * time.Millisecond
)

// newAcceptor builds the acceptor over the listening sockets fds (owned by
// the caller, which closes them only after stop has returned).
func newAcceptor(fds []int, log *slog.Logger, met *metrics.Handoff) (*acceptor, error) {
	a := &acceptor{log: log, met: met, epfd: -1, wakefd: -1, spare: -1, done: make(chan struct{}),
		events: make([]unix.EpollEvent, 64), closeFD: closeFD}
	var err error
	if a.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if a.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		a.closeAll()
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, a.wakefd,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a.wakefd)}); err != nil {
		a.closeAll()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if a.spare, err = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		a.closeAll()
		return nil, os.NewSyscallError("open /dev/null", err)
	}
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			a.closeAll()
			return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
		}
		kind := wire.ConnStream
		if sa, err := unix.Getsockname(fd); err == nil {
			switch sa.(type) {
			case *unix.SockaddrInet4, *unix.SockaddrInet6:
				kind = wire.ConnTCP
			}
		}
		// Level-triggered, registered disarmed (no events) until a worker
		// is ready: connections wait in the kernel's queue meanwhile.
		if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Fd: int32(fd)}); err != nil {
			a.closeAll()
			return nil, fmt.Errorf("acceptor: listener fd %d: %w", fd, os.NewSyscallError("epoll_ctl", err))
		}
		a.lns = append(a.lns, acceptListener{fd: fd, kind: kind})
	}
	return a, nil
}

// run is the acceptor's goroutine, until stop.
func (a *acceptor) run() {
	defer func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.closeAll()
		close(a.done)
	}()
	hot := false
	for {
		// While connections keep coming (the last wait returned events),
		// wait raw, without the scheduler's syscall bookkeeping, and at
		// most hotWait: a blocking wait through the scheduler lets sysmon
		// hand this goroutine's P to another thread after 20 µs and makes
		// the return wait for one, two thread switches per wake-up that
		// cost more than the accept itself. A raw wait that ends empty
		// makes the next one cold: an idle acceptor blocks where the
		// runtime can see it (package loop does the same, loop/sys.go).
		timeout := a.waitTimeout()
		if hot && (timeout < 0 || timeout > hotWaitMillis) {
			timeout = hotWaitMillis
		}
		var n int
		var err error
		if hot || timeout == 0 {
			n, err = rawEpollWait(a.epfd, a.events, timeout)
		} else {
			n, err = unix.EpollWait(a.epfd, a.events, timeout)
		}
		if err == unix.EINTR {
			// During a raw wait, the runtime asking for this goroutine
			// (SIGURG: preemption, a stop of the world): give it a safe
			// point now.
			runtime.Gosched()
			continue
		}
		if err != nil {
			// Only a bad epoll fd or a bad buffer can fail it: a bug. Stop
			// accepting (the listeners stay open; the master stops when told).
			a.log.Error("acceptor stopped: new connections wait unaccepted", "err", os.NewSyscallError("epoll_wait", err))
			a.dropPending()
			return
		}
		if timeout != 0 {
			hot = n > 0
		}
		a.now = time.Now()
		a.met.Wakeups.Inc()
		for i := 0; i < n; i++ {
			if int(a.events[i].Fd) == a.wakefd {
				a.runCommands()
				continue
			}
			for j := range a.lns {
				if a.lns[j].fd == int(a.events[i].Fd) {
					a.lns[j].readable = true
				}
			}
		}
		if a.handingOver {
			a.place()
			a.dropPending()
			return
		}
		if a.stopping {
			// Stop accepting first, but take what the kernel has queued:
			// those clients completed their handshake and wait. They go to
			// the workers, which drain them with the rest.
			a.acceptQueued(1 << 20)
			a.place()
			a.dropPending()
			return
		}
		a.acceptQueued(acceptBudget)
		a.place()
		a.expire()
		a.arm(a.canAccept())
		a.met.Queue.Set(float64(len(a.pending)))
	}
}

// waitTimeout is epoll_wait's: forever, unless connections wait for a
// worker or a worker's socket was full (then soon, to try again).
func (a *acceptor) waitTimeout() int {
	if len(a.pending) == 0 && !a.anyFull() {
		return -1
	}
	return int(fullBackoff / time.Millisecond)
}

func (a *acceptor) anyFull() bool {
	for _, p := range a.peers {
		if !p.fullUntil.IsZero() {
			return true
		}
	}
	return false
}

// eligible reports whether p may be given connections now.
func (a *acceptor) eligible(p *peer) bool {
	if p.fullUntil.IsZero() {
		return true
	}
	if a.now.Before(p.fullUntil) {
		return false
	}
	p.fullUntil = time.Time{}
	return true
}

// canAccept: some worker can take connections and the acceptor holds few
// enough.
func (a *acceptor) canAccept() bool {
	if a.stopping || len(a.pending) >= maxPending {
		return false
	}
	for _, p := range a.peers {
		if a.eligible(p) {
			return true
		}
	}
	return false
}

// arm puts the listeners in the epoll set (EPOLLIN) or takes them out.
func (a *acceptor) arm(on bool) {
	if on == a.armed {
		return
	}
	ev := uint32(0)
	if on {
		ev = unix.EPOLLIN
	}
	for _, ln := range a.lns {
		if ln.dead {
			continue
		}
		if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_MOD, ln.fd, &unix.EpollEvent{Events: ev, Fd: int32(ln.fd)}); err != nil {
			a.log.Error("acceptor: epoll_ctl on a listener", "fd", ln.fd, "err", os.NewSyscallError("epoll_ctl", err))
		}
	}
	a.armed = on
}

// acceptQueued accepts from the readable listeners, up to budget in all.
func (a *acceptor) acceptQueued(budget int) {
	if !a.canAccept() && !a.stopping {
		return
	}
	for i := range a.lns {
		ln := &a.lns[i]
		if ln.dead || (!ln.readable && !a.stopping) {
			continue
		}
		for budget > 0 && len(a.pending) < maxPending {
			fd, err := accept4(ln.fd)
			if err == nil {
				a.pending = append(a.pending, pendingConn{fd: fd, kind: ln.kind, since: a.now})
				budget--
				continue
			}
			if !a.acceptFailed(ln, err) {
				break
			}
		}
		if budget == 0 {
			return // ln stays readable: level-triggered, the next turn goes on
		}
	}
}

// acceptFailed handles an accept4 error; it reports whether to accept again
// from the same listener.
func (a *acceptor) acceptFailed(ln *acceptListener, err error) bool {
	switch err {
	case unix.EAGAIN:
		ln.readable = false // drained
		return false
	case unix.ECONNABORTED:
		return true // the peer reset a queued connection; the next is unaffected
	case unix.EMFILE, unix.ENFILE:
		// Out of fds: the queued connection keeps the level-triggered
		// listener readable, so doing nothing would spin. Give up the spare,
		// accept and close one connection (the client sees a close), take
		// the spare back. The master holds few fds of its own; this is a
		// --workers or RLIMIT_NOFILE problem, logged.
		if a.spare >= 0 {
			_ = unix.Close(a.spare)
			a.spare = -1
		}
		if fd, aerr := accept4(ln.fd); aerr == nil {
			_ = unix.Close(fd)
			a.met.Errors.WithLabelValues(metrics.HandoffShed).Inc()
		}
		a.spare, _ = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		a.log.Warn("acceptor out of file descriptors: closed a new connection", "err", os.NewSyscallError("accept4", err))
		return false
	case unix.ENOBUFS, unix.ENOMEM:
		a.met.Errors.WithLabelValues(metrics.HandoffAccept).Inc()
		return false // memory pressure: the next turn tries again
	case unix.EINVAL:
		// Not listening any more (only the master closes its sockets, at
		// stop): leave it, level-triggered readable, out of the set.
		a.log.Warn("acceptor: listener stopped listening", "fd", ln.fd)
		_ = unix.EpollCtl(a.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
		ln.readable, ln.dead = false, true
		return false
	default:
		// Network errors of the new connection that accept passes on
		// (EPROTO, ENETDOWN, EPERM from a firewall...): that connection
		// only, as the man page says; go on.
		a.met.Errors.WithLabelValues(metrics.HandoffAccept).Inc()
		return true
	}
}

// place hands every pending connection to a worker: each to the eligible
// peer with the lowest load, ties round-robin; then one sendmsg per peer per
// MaxHandoffFDs fds. A peer whose send fails is skipped (socket full: for
// fullBackoff; gone: for good) and its share placed again among the others,
// in rounds, until everything is sent or nobody is left to take it.
func (a *acceptor) place() {
	for round := 0; len(a.pending) > 0 && round <= len(a.peers); round++ {
		assigned := false
		for i := range a.pending {
			p := a.choose()
			if p == nil {
				break
			}
			a.pending[i].to = p
			p.handed++
			assigned = true
		}
		if !assigned {
			return
		}
		failed := false
		for _, p := range a.peers {
			if !a.sendTo(p) {
				failed = true
			}
		}
		// Keep what was not sent, in order.
		kept := a.pending[:0]
		for _, c := range a.pending {
			if c.fd >= 0 {
				c.to = nil
				kept = append(kept, c)
			}
		}
		clear(a.pending[len(kept):])
		a.pending = kept
		a.dropGone()
		if !failed {
			return
		}
	}
}

// choose returns the eligible peer with the lowest load, scanning from the
// round-robin cursor so that ties go to each in turn; nil if none.
func (a *acceptor) choose() *peer {
	var best *peer
	bi := 0
	var bl int64
	for i := range a.peers {
		j := (a.rr + i) % len(a.peers)
		p := a.peers[j]
		if p.dead || !a.eligible(p) {
			continue
		}
		if l := p.load(); best == nil || l < bl {
			best, bi, bl = p, j, l
		}
	}
	if best != nil {
		a.rr = (bi + 1) % len(a.peers)
	}
	return best
}

// sendTo sends p the pending connections assigned to it, MaxHandoffFDs per
// message, closing the master's copy of each one sent (fd set to -1). It
// reports false if a send failed: the rest stay pending, un-assigned.
func (a *acceptor) sendTo(p *peer) bool {
	var fds []int
	var idx []int
	ok := true
	flush := func() {
		if len(fds) == 0 {
			return
		}
		if ok {
			if err := a.sendBatch(p, fds, idx); err != nil {
				ok = false
				a.sendFailed(p, err, len(fds))
			}
		}
		if !ok {
			p.handed -= uint64(len(fds))
		}
		fds, idx = fds[:0], idx[:0]
	}
	for i := range a.pending {
		c := &a.pending[i]
		if c.to != p || c.fd < 0 {
			continue
		}
		fds = append(fds, c.fd)
		idx = append(idx, i)
		if len(fds) == wire.MaxHandoffFDs {
			flush()
		}
	}
	flush()
	return ok
}

// sendBatch sends one FDS message with fds (pending[idx[i]]'s) and closes
// the master's copies.
func (a *acceptor) sendBatch(p *peer, fds, idx []int) error {
	a.msg = a.msg[:0]
	kinds := make([]byte, 0, len(fds))
	for _, i := range idx {
		kinds = append(kinds, a.pending[i].kind)
	}
	a.msg = wire.HandoffFDs(a.msg, kinds)
	if err := p.send.sendFDs(a.msg, unix.UnixRights(fds...)); err != nil {
		return err
	}
	// The worker's fds refer to the same open files: closing ours now
	// leaves each connection in exactly one process.
	for _, i := range idx {
		if err := a.closeFD(a.pending[i].fd); err != nil {
			a.log.Warn("acceptor: closing a handed connection", "err", err)
		}
		a.pending[i].fd = -1
	}
	a.met.Batch.Observe(float64(len(fds)))
	p.handoffs.Add(float64(len(fds)))
	return nil
}

// sendFailed decides what a failed send means for p.
func (a *acceptor) sendFailed(p *peer, err error, n int) {
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ETOOMANYREFS):
		// The socket is full (the worker is behind, or too many fds are in
		// flight for the master's RLIMIT_NOFILE): skip it for a moment.
		p.fullUntil = a.now.Add(fullBackoff)
		a.met.Errors.WithLabelValues(metrics.HandoffSocketFull).Add(float64(n))
	default:
		// EPIPE, ECONNREFUSED, ECONNRESET, or the socket closed under us:
		// the worker has gone. Its exit reaches the supervisor by SIGCHLD.
		p.dead = true
		a.met.Errors.WithLabelValues(metrics.HandoffWorkerGone).Add(float64(n))
		a.log.Info("acceptor: worker gone; its connections go to others", "slot", p.slot, "pid", p.pid, "err", err)
	}
}

// dropGone removes the peers found gone.
func (a *acceptor) dropGone() {
	for i := 0; i < len(a.peers); i++ {
		if a.peers[i].dead {
			a.removePeer(a.peers[i])
			i--
		}
	}
}

func (a *acceptor) removePeer(p *peer) {
	for i, q := range a.peers {
		if q == p {
			a.peers = append(a.peers[:i], a.peers[i+1:]...)
			if a.rr > i {
				a.rr--
			}
			if len(a.peers) > 0 {
				a.rr %= len(a.peers)
			} else {
				a.rr = 0
			}
			return
		}
	}
}

// expire closes connections that waited pendingHold for a worker.
func (a *acceptor) expire() {
	kept := a.pending[:0]
	for _, c := range a.pending {
		if a.now.Sub(c.since) < pendingHold {
			kept = append(kept, c)
			continue
		}
		_ = unix.Close(c.fd)
		a.met.Errors.WithLabelValues(metrics.HandoffNoWorker).Inc()
	}
	if n := len(a.pending) - len(kept); n > 0 {
		a.log.Warn("acceptor: no worker took connections in time; closed them", "connections", n)
	}
	clear(a.pending[len(kept):])
	a.pending = kept
}

// dropPending closes every pending connection (the master is stopping).
func (a *acceptor) dropPending() {
	for _, c := range a.pending {
		_ = unix.Close(c.fd)
	}
	if n := len(a.pending); n > 0 {
		a.met.Errors.WithLabelValues(metrics.HandoffNoWorker).Add(float64(n))
		a.log.Warn("acceptor stopping: closed connections no worker took", "connections", n)
	}
	a.pending = nil
	a.met.Queue.Set(0)
}

// do runs fn on the acceptor's goroutine at its next turn. It reports false
// if the acceptor has stopped (fn will never run).
func (a *acceptor) do(fn func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.cmds = append(a.cmds, fn)
	if !a.woken {
		a.woken = true
		var one = [8]byte{1}
		_, _ = unix.Write(a.wakefd, one[:]) // EAGAIN: saturated, it is signalled anyway
	}
	return true
}

// call runs fn on the acceptor's goroutine and waits until it has run, the
// acceptor has stopped, or timeout. It reports whether fn ran.
func (a *acceptor) call(fn func(), timeout time.Duration) bool {
	ran := make(chan struct{})
	if !a.do(func() { fn(); close(ran) }) {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ran:
		return true
	case <-a.done:
		select {
		case <-ran:
			return true
		default:
			return false
		}
	case <-t.C:
		a.log.Error("acceptor did not answer in time", "timeout", timeout)
		return false
	}
}

func (a *acceptor) runCommands() {
	var buf [8]byte
	_, _ = unix.Read(a.wakefd, buf[:]) // EAGAIN: read by an earlier turn
	a.mu.Lock()
	a.woken = false
	a.run1, a.cmds = a.cmds, a.run1[:0]
	a.mu.Unlock()
	for i, fn := range a.run1 {
		fn()
		a.run1[i] = nil
	}
}

// add makes p a target for new connections (its worker is READY).
func (a *acceptor) add(p *peer) {
	a.do(func() {
		for _, q := range a.peers {
			if q == p {
				return
			}
		}
		if !p.dead {
			a.peers = append(a.peers, p)
		}
	})
}

// remove stops giving connections to p and returns once no send to it is
// in progress or can follow: a message the caller sends p's worker next
// (STOP) arrives after every FDS.
func (a *acceptor) remove(p *peer) {
	a.call(func() {
		p.dead = true
		a.removePeer(p)
	}, time.Second)
}

// stop stops accepting (what is queued in the kernel is still accepted and
// handed out), and returns when the acceptor's goroutine has finished, or
// at once if it never ran.
func (a *acceptor) stop() { a.end(func() { a.stopping = true }, "stop") }

// handover hands out the connections the acceptor holds and ends it,
// without accepting more: what the kernel has queued waits for the next
// image's acceptor (an upgrade in place). It returns when the goroutine has
// ended, and at once if it never ran.
func (a *acceptor) handover() { a.end(func() { a.handingOver = true }, "hand over") }

// end runs mark (which makes run return after its turn) on the acceptor's
// goroutine and waits, up to 5 s, for that goroutine to end.
func (a *acceptor) end(mark func(), what string) {
	if !a.do(mark) {
		return
	}
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		a.log.Error("acceptor did not " + what + " in time")
	}
}

func (a *acceptor) closeAll() {
	for _, fd := range []*int{&a.epfd, &a.wakefd, &a.spare} {
		if *fd >= 0 {
			_ = unix.Close(*fd)
			*fd = -1
		}
	}
}

// hotWaitMillis bounds a raw epoll_wait (see run).
const hotWaitMillis = 10

// rawEpollWait is epoll_wait without telling the scheduler: for short waits
// only (run).
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// accept4 accepts a connection non-blocking and close-on-exec, without the
// peer's address (unix.Accept4 would allocate one per connection). The
// worker's copy shares the open file, so it is non-blocking there too.
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
