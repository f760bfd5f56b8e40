package master

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/cpus"
	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// procState is where a worker process is in its life.
type procState int

const (
	stateStarting procState = iota // started, READY not yet received
	stateReady                     // serving
	stateStopping                  // told to STOP/QUIT/RETIRE; will exit
)

func (s procState) String() string {
	return [...]string{"starting", "ready", "stopping"}[s]
}

// proc is one worker process.
type proc struct {
	pid     int
	slot    int
	gen     int
	ctl     control // the master's end of the control socketpair
	state   procState
	started time.Time
	readyAt time.Time
	lastHB  time.Time
	abortAt time.Time // SIGABRT sent (hung); zero if not
	// retired: set when the worker's slot is removed; the slot's sockets
	// close when its last worker exits.
	retired *retired
	// killAt: SIGKILL if still alive then (stop deadline); zero if none.
	killAt time.Time
	hung   bool // aborted for missing heartbeats
	killed bool // SIGKILL sent
	// reload: started as a reload's replacement; its READY (or its death
	// before it) moves the reload on to the next slot.
	reload bool
	// recycle: started as a recycle's replacement (recycle.go), the reason
	// (metrics.RestartMaxRequests or RestartMaxRSS) until it is ready. Not
	// a reload: it moves no reload on and ends in no "reload done".
	recycle string
	// rssExempt: it was past --max-worker-rss when it got READY, so
	// recycling it by RSS would only start a loop (noteReadyRSS).
	rssExempt bool
	conns     int // open connections, from the last heartbeat
	// requests served, from the last heartbeat (-1: not known, as from a
	// worker of an older binary); maxRequests is the worker's own
	// --max-requests plus its jitter, drawn at its start (0: off).
	requests    int64
	maxRequests int64
	// peer is the worker as the handoff acceptor sees it (handoff mode;
	// nil otherwise).
	peer *peer
	// binID is the binary of the master that started it (binaryID).
	binID string
	// metrics receives the worker's answers to METRICS requests (written by
	// readControl, read by a scrape).
	metrics chan metricsReply
}

// slot is one worker position, 0..N-1. Its number survives restarts: the
// replacement of slot k's worker is slot k's worker again, with slot k's
// sockets (reuseport mode) and metrics label.
type slot struct {
	index    int
	gen      int   // generation of the newest worker started for it
	cur      *proc // the serving (or starting) worker; nil while waiting to restart
	next     *proc // a reload's replacement, until it is ready
	restarts int   // replacements after unexpected exits
	crashes  int   // consecutive crashes, for the backoff
	// restartTimer is pending while the slot waits out its backoff.
	restartTimer timer
	// paused: new connections are steered away from the slot's sockets
	// during its backoff, until its next worker is ready.
	paused bool
	// recycleFails counts the recycle replacements in a row that died
	// before READY; no recycle of the slot starts before recycleHold.
	recycleFails int
	recycleHold  time.Time
}

// How long a stopping worker has, past its own deadline, before SIGKILL; and
// how long a hung worker has to die of SIGABRT (printing its goroutines).
const (
	stopSlack  = 5 * time.Second
	abortGrace = 3 * time.Second
)

// startSlot creates slot k and starts its worker.
func (m *Master) startSlot(k int) {
	s := &slot{index: k}
	m.slots[k] = s
	m.startWorker(s)
}

// startWorker starts a worker for slot s: as s.cur if the slot has none,
// else as s.next (a reload's or a recycle's replacement: the caller marks
// it as the one or the other).
func (m *Master) startWorker(s *slot) *proc {
	fds, err := m.ls.forSlot(s.index)
	if err != nil {
		m.log.Error("cannot open slot listeners", "slot", s.index, "err", err)
		m.scheduleRestart(s)
		return nil
	}
	s.gen++
	limit := m.requestLimit()
	spec := wire.Spec{
		RecycleAfter: uint64(limit),
		Settings:     m.cfg.Settings,
		Slot:         s.index,
		Generation:   s.gen,
		Listeners:    m.ls.describe(),
		Exclusive:    m.cfg.Mode == ModeShared,
		Handoff:      m.cfg.Mode == ModeHandoff,
		Heartbeat:    m.cfg.heartbeat(),
	}
	if m.accessLog >= 0 {
		spec.AccessLogFD = true
		fds = append(fds[:len(fds):len(fds)], m.accessLog)
	}
	if m.rootDir >= 0 {
		spec.RootFD = true
		fds = append(fds[:len(fds):len(fds)], m.rootDir)
	}
	if m.cfg.CPUAffinity {
		if cpu, ok := cpus.ForSlot(s.index); ok {
			spec.CPU = &cpu
		}
	}
	pid, ctl, err := m.env.start(spec, fds, &m.cfg)
	if err != nil {
		m.log.Error("cannot start worker", "slot", s.index, "err", err)
		m.scheduleRestart(s)
		return nil
	}
	now := m.env.now()
	p := &proc{pid: pid, slot: s.index, gen: s.gen, ctl: ctl, state: stateStarting, started: now, lastHB: now,
		binID: m.binID, metrics: make(chan metricsReply, 1), requests: -1, maxRequests: limit}
	m.procs[pid] = p
	if s.cur == nil {
		s.cur = p
	} else {
		s.next = p
	}
	p.peer = m.newPeer(pid, s.index, ctl)
	go m.readControl(p.pid, ctl, p.metrics, p.peer)
	attrs := []any{"slot", s.index, "gen", s.gen, "pid", pid}
	if p.maxRequests > 0 {
		attrs = append(attrs, "max_requests", p.maxRequests)
	}
	m.log.Info("worker started", attrs...)
	return p
}

func (m *Master) onExit(pid int, ws unix.WaitStatus) {
	p := m.procs[pid]
	if p == nil {
		return // not a worker: an orphan reparented to us as PID 1
	}
	delete(m.procs, pid)
	m.handoffExit(p)
	p.ctl.Close()
	how := exitString(ws)
	s := m.slots[p.slot]
	now := m.env.now()
	expected := p.state == stateStopping
	if expected {
		m.log.Info("worker exited", "slot", p.slot, "gen", p.gen, "pid", pid, "status", how)
	} else {
		m.log.Warn("worker died", "slot", p.slot, "gen", p.gen, "pid", pid, "status", how,
			"uptime", now.Sub(p.started).Round(time.Millisecond))
	}
	if r := p.retired; r != nil {
		if r.procs--; r.procs == 0 && !m.stopping {
			m.closeRetired(r)
		}
		return
	}
	if s == nil || m.stopping {
		return
	}
	switch {
	case s.next == p && p.recycle != "":
		// A recycle's replacement died before it was ready: keep the old
		// worker; the slot is not recycled again for a while.
		s.next = nil
		m.recycleFailed(s, p)
		m.reloadResume()
	case s.next == p:
		// A reload's replacement died before it was ready: keep the old
		// worker and go on with the next slot.
		s.next = nil
		if m.upgrading {
			// The new binary's worker cannot start: go back to the old
			// binary rather than run a master whose workers fail.
			m.rollback(fmt.Sprintf("the new binary's worker for slot %d died (%s) before it was ready", s.index, how))
			return
		}
		m.log.Error("reload: replacement worker died before ready; keeping the old one", "slot", s.index)
		m.reloadNext()
	case s.cur == p:
		s.cur = nil
		if !expected {
			s.restarts++
			reason := metrics.RestartExited
			switch {
			case p.hung:
				reason = metrics.RestartHung
			case ws.Signaled():
				reason = metrics.RestartSignaled
			}
			m.metrics.Restarts.WithLabelValues(reason).Inc()
			if !p.readyAt.IsZero() && now.Sub(p.readyAt) >= m.cfg.StablePeriod {
				s.crashes = 0
			}
			m.scheduleRestart(s)
		}
		if s.next != nil {
			// The worker a reload is replacing is gone: its replacement,
			// still starting, takes the slot now instead of a restart.
			s.cur, s.next = s.next, nil
		} else if p.reload {
			// A replacement that had taken the slot that way died before
			// READY: the slot restarts as any other, the reload goes on.
			m.reloadNext()
		} else if p.recycle != "" {
			m.reloadResume() // a reload may have waited on this recycle
		}
	}
}

// scheduleRestart replaces slot s's worker: at once after a first crash,
// after an exponentially growing delay for repeated ones.
func (m *Master) scheduleRestart(s *slot) {
	if m.stopping || s.restartTimer != nil || s.cur != nil || s.next != nil {
		return
	}
	delay := backoff(s.crashes, m.cfg.BackoffMin, m.cfg.BackoffMax)
	s.crashes++
	if delay == 0 {
		m.startWorker(s)
		return
	}
	m.log.Warn("worker crash loop: backing off", "slot", s.index, "delay", delay, "crashes", s.crashes)
	if !s.paused {
		// Nobody will accept on the slot's socket for a while: new
		// connections go to the other slots meanwhile (those already
		// queued wait for the next worker).
		if err := m.ls.pauseSlot(s.index); err != nil {
			m.log.Debug("cannot steer connections away from a slot in backoff", "slot", s.index, "err", err)
		} else {
			s.paused = true
		}
	}
	index, gen := s.index, s.gen
	s.restartTimer = m.env.afterFunc(delay, func() { m.post(evRestart{slot: index, gen: gen}) })
}

// backoff is 0 for the first crash, then min, 2·min, 4·min... up to max.
func backoff(crashes int, lo, hi time.Duration) time.Duration {
	if crashes == 0 {
		return 0
	}
	d := lo
	for i := 1; i < crashes && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// onTick kills hung workers, enforces stop deadlines and talks to systemd.
func (m *Master) onTick() {
	now := m.env.now()
	healthy := true
	for _, p := range m.procs {
		if p.state != stateStopping && now.Sub(p.lastHB) > 2*m.cfg.heartbeat()+time.Second {
			healthy = false
		}
	}
	m.notify.tick(now, healthy)
	m.checkTick(now)
	for _, p := range m.procs {
		if p.killed {
			continue // its exit is on the way
		}
		switch {
		case !p.killAt.IsZero() && now.After(p.killAt):
			m.log.Warn("worker did not exit in time: SIGKILL", "slot", p.slot, "pid", p.pid)
			m.kill(p, unix.SIGKILL)
			p.killed = true
		case !p.abortAt.IsZero():
			if now.Sub(p.abortAt) > abortGrace {
				m.log.Warn("hung worker still there after SIGABRT: SIGKILL", "slot", p.slot, "pid", p.pid)
				m.kill(p, unix.SIGKILL)
				p.killed = true
			}
		case now.Sub(p.lastHB) > m.cfg.WorkerTimeout:
			// Its loop is stuck (no heartbeat from the loop thread). SIGABRT
			// makes the Go runtime print every goroutine's stack, then SIGKILL
			// if that does not end it.
			m.log.Error("worker hung: no heartbeat; aborting it", "slot", p.slot, "pid", p.pid,
				"silent", now.Sub(p.lastHB).Round(time.Millisecond), "state", p.state.String())
			m.abort(p, now)
		case p.state == stateStarting && now.Sub(p.started) > m.cfg.WorkerTimeout:
			// Alive but never READY: a reload would wait on it for ever.
			m.log.Error("worker not ready in time: aborting it", "slot", p.slot, "pid", p.pid,
				"after", now.Sub(p.started).Round(time.Millisecond))
			m.abort(p, now)
		}
	}
}

// abort sends SIGABRT to a hung worker (the Go runtime prints every
// goroutine's stack), and SIGKILL abortGrace later if it is still there; its
// exit is then a crash, counted as hung.
func (m *Master) abort(p *proc, now time.Time) {
	m.handoffExit(p) // no more connections for it: they would die with it
	m.kill(p, unix.SIGABRT)
	p.abortAt = now
	p.hung = true
}

// kill signals a worker. An error means it has exited already (its exit
// event is on the way) or was never ours: nothing to do but say so.
func (m *Master) kill(p *proc, sig unix.Signal) {
	if err := m.env.signal(p.pid, sig); err != nil {
		m.log.Debug("signalling worker", "pid", p.pid, "signal", sig.String(), "err", err)
	}
}

// stopProc tells a worker to stop (MsgStop, MsgQuit or MsgRetire) and sets
// the deadline after which it is killed.
func (m *Master) stopProc(p *proc, how string) {
	if p.state == stateStopping && how != wire.MsgQuit {
		return
	}
	how = m.handoffStop(p, how)
	p.state = stateStopping
	grace := m.cfg.GracefulTimeout + stopSlack
	if how == wire.MsgQuit {
		grace = stopSlack
	}
	p.killAt = m.env.now().Add(grace)
	if err := p.ctl.Send([]byte(how), time.Second); err != nil {
		// The worker is gone or wedged: a signal does the same job.
		m.log.Warn("control write failed; signalling", "pid", p.pid, "err", err)
		sig := unix.SIGTERM
		if how == wire.MsgQuit {
			sig = unix.SIGKILL
		}
		m.kill(p, sig)
	}
}

// stop begins a graceful (MsgStop) or fast (MsgQuit) stop of everything.
func (m *Master) stop(how string) {
	if m.stopping && (how == m.stopKind || how == wire.MsgStop) {
		return
	}
	if !m.stopping {
		m.notify.stopping()
	}
	// Handoff mode: stop accepting first (what the kernel has queued is
	// still handed out, to workers that are about to drain it).
	m.stopAccepting()
	m.stopping = true
	m.stopKind = how
	m.reloadQueue = nil
	for _, s := range m.slots {
		if s.restartTimer != nil {
			s.restartTimer.Stop()
			s.restartTimer = nil
		}
	}
	for _, p := range m.procs {
		m.stopProc(p, how)
	}
	// The workers close their copies as they drain; closing ours makes the
	// sockets go away once the last worker lets go.
	m.ls.closeAll()
	if m.admin != nil {
		m.admin.Close()
	}
}
