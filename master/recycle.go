package master

import (
	"slices"
	"time"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// Recycling (gunicorn's max_requests, uWSGI's reload-on-rss): a worker that
// has served its request limit, or whose RSS has passed --max-worker-rss, is
// replaced the way a reload replaces it — a new worker for its slot first,
// and once that one is READY the old one is told STOP and drains — so a
// leaking handler costs a graceful replacement, not an outage.
//
// It is checked at each heartbeat of a worker (every Spec.Heartbeat, a
// second at most), since that is when the master learns the worker's request
// count; the worker, told its limit (Spec.RecycleAfter), also heartbeats the
// loop turn it reaches it, so the replacement starts within a turn's worth
// of requests of the limit rather than a second's. The limit is --max-requests plus a number drawn in
// 0..--max-requests-jitter when the worker starts, so workers started
// together (at start, by a reload) do not all recycle at once.
//
// A recycle is not a reload: its replacement is marked proc.recycle, not
// proc.reload, so it moves no reload on, counts in no reloadBusy, and ends in
// no "reload done" or READY=1. It is counted in
// prefork_worker_restarts_total{reason="max_requests"|"max_rss"} when the
// replacement takes the slot.

// recycleRetry is how long a slot waits before its next recycle after a
// recycle's replacement died before READY, doubling with each failure in a
// row up to Config.BackoffMax (at least recycleRetry): the old worker is
// kept meanwhile, and a binary that cannot start is not forked in a loop.
const recycleRetry = 5 * time.Second

// requestLimit draws a new worker's request limit: --max-requests plus
// 0..--max-requests-jitter; 0 when recycling by requests is off.
func (m *Master) requestLimit() int64 {
	if m.cfg.MaxRequests <= 0 {
		return 0
	}
	n := int64(m.cfg.MaxRequests)
	if j := m.cfg.MaxRequestsJitter; j > 0 {
		n += int64(m.env.intn(j + 1))
	}
	return n
}

// checkRecycle runs at each heartbeat of p: it starts p's replacement when p
// has served its request limit or its RSS has passed --max-worker-rss.
func (m *Master) checkRecycle(p *proc) {
	if m.cfg.MaxRequests <= 0 && m.cfg.MaxWorkerRSS <= 0 {
		return
	}
	s := m.recyclable(p)
	if s == nil {
		return
	}
	if p.maxRequests > 0 && p.requests >= p.maxRequests {
		m.recycle(s, p, metrics.RestartMaxRequests, "requests", p.requests, "max_requests", p.maxRequests)
		return
	}
	if m.cfg.MaxWorkerRSS > 0 && !p.rssExempt {
		rss, err := m.env.rss(p.pid)
		if err != nil {
			// It has exited (its exit is on the way), or /proc is not
			// readable: the next heartbeat tries again.
			m.log.Debug("cannot read a worker's RSS", "slot", p.slot, "pid", p.pid, "err", err)
			return
		}
		if rss > m.cfg.MaxWorkerRSS {
			m.recycle(s, p, metrics.RestartMaxRSS, "rss", rss, "max_rss", m.cfg.MaxWorkerRSS)
		}
	}
}

// noteReadyRSS runs when p says READY, having served nothing yet. A worker
// already past --max-worker-rss then would be recycled at its first
// heartbeat, and its replacement at its own, for ever: the limit is below
// what a worker needs to start. Such a worker is never recycled by RSS
// (p.rssExempt), and the master says so, once.
func (m *Master) noteReadyRSS(p *proc) {
	if m.cfg.MaxWorkerRSS <= 0 {
		return
	}
	rss, err := m.env.rss(p.pid)
	if err != nil || rss <= m.cfg.MaxWorkerRSS {
		return
	}
	p.rssExempt = true
	if !m.rssWarned {
		m.rssWarned = true
		m.log.Error("--max-worker-rss is below the RSS of a worker that has served nothing yet: workers that start above it are not recycled by RSS; raise it",
			"max_worker_rss", m.cfg.MaxWorkerRSS, "rss_at_ready", rss, "slot", p.slot, "pid", p.pid)
	}
}

// recyclable returns p's slot if p may be recycled now: it serves its slot
// (ready, not stopping or retiring), the slot has no replacement starting
// (a reload's or a recycle's), no other slot's recycle is in flight, no
// reload is about to replace it anyway, the
// slot is not holding off after a failed recycle, and the master is not
// stopping. nil otherwise: a later heartbeat checks again.
func (m *Master) recyclable(p *proc) *slot {
	if m.stopping || p.state != stateReady || p.retired != nil {
		return nil
	}
	s := m.slots[p.slot]
	if s == nil || s.cur != p || s.next != nil || slices.Contains(m.reloadQueue, s.index) {
		return nil
	}
	if m.env.now().Before(s.recycleHold) {
		return nil
	}
	for _, o := range m.slots {
		if o.next != nil && o.next.recycle != "" {
			// One recycle at a time, as a rolling reload goes: workers
			// that reached their limits together (a heartbeat carries a
			// second's worth of requests under load) are replaced one
			// after the other, never all at once.
			return nil
		}
	}
	return s
}

// recycle starts the replacement of slot s's worker p, for reason; attrs say
// why, in the log.
func (m *Master) recycle(s *slot, p *proc, reason string, attrs ...any) {
	m.log.Info("recycling worker", append([]any{"slot", s.index, "gen", p.gen, "pid", p.pid, "reason", reason}, attrs...)...)
	np := m.startWorker(s)
	if np == nil || s.next != np {
		// The fork failed (logged): the old worker serves on; hold off
		// as after a replacement that died.
		m.recycleFailed(s, nil)
		return
	}
	np.recycle = reason
}

// recycleReady: a recycle's replacement p is READY. If it is still slot s's
// replacement, it takes the slot and the worker it replaces drains; if that
// worker died meanwhile, p has taken the slot already as after a crash
// (counted as such), and there is nothing to do but resume a reload that
// waited.
func (m *Master) recycleReady(s *slot, p *proc) {
	reason := p.recycle
	p.recycle = ""
	if s.next == p {
		old := s.cur
		s.cur, s.next = p, nil
		s.recycleFails = 0
		m.metrics.Restarts.WithLabelValues(reason).Inc()
		if old != nil {
			m.log.Info("worker recycled", "slot", s.index, "reason", reason, "old_pid", old.pid, "old_gen", old.gen,
				"old_requests", old.requests, "pid", p.pid, "gen", p.gen)
			m.stopProc(old, wire.MsgStop)
		}
	}
	m.reloadResume()
	m.recycleNext()
}

// recycleNext starts the recycle of a worker that reached its limit while
// another recycle was in flight (one at a time): its report came and went,
// and its next heartbeat could be a second of requests away. The lowest
// slot first; one at most (recyclable refuses the rest).
func (m *Master) recycleNext() {
	ks := make([]int, 0, len(m.slots))
	for k := range m.slots {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		if p := m.slots[k].cur; p != nil && p.state == stateReady {
			m.checkRecycle(p)
		}
	}
}

// recycleFailed: slot s's recycle failed (its replacement p died before
// READY, or could not be started: p nil). The old worker serves on; the slot
// is not recycled again before recycleRetry, doubled for each failure in a
// row.
func (m *Master) recycleFailed(s *slot, p *proc) {
	s.recycleFails++
	delay := max(recycleRetry, backoff(s.recycleFails, recycleRetry, m.cfg.BackoffMax))
	s.recycleHold = m.env.now().Add(delay)
	attrs := []any{"slot", s.index, "retry_in", delay, "failures", s.recycleFails}
	if p == nil {
		m.log.Error("recycle: cannot start a replacement worker; keeping the old one", attrs...)
		return
	}
	m.log.Error("recycle: replacement worker died before ready; keeping the old one",
		append(attrs, "pid", p.pid, "gen", p.gen)...)
}

// reloadResume moves on a reload that waited for a recycle's replacement
// (reloadNext waits for one at the head of its queue) once that replacement
// is ready or gone.
func (m *Master) reloadResume() {
	if len(m.reloadQueue) > 0 && !m.reloadBusy() && !m.stopping {
		m.reloadNext()
	}
}
