package master

import (
	"bytes"
	"time"

	"github.com/prefork/prefork/wire"
)

type metricsReply struct {
	id   string
	body []byte
}

// readControl forwards one worker's control messages until EOF. Metrics
// answers go straight to the scrape waiting for them.
//
// In handoff mode, GONE reports go straight to the worker's peer, where the
// acceptor reads them, without a trip through the supervisor.
func (m *Master) readControl(pid int, c control, replies chan<- metricsReply, pr *peer) {
	buf := make([]byte, wire.MaxMessage)
	for {
		n, err := c.Recv(buf)
		if err != nil || n == 0 {
			return // the worker exited (its exit arrives through SIGCHLD) or we closed
		}
		msg := buf[:n]
		if pr != nil {
			if closed, ok := wire.ParseGone(msg); ok {
				pr.reportClosed(closed)
				continue
			}
		}
		if id, body, ok := wire.ParseMetricsReply(msg); ok {
			select {
			case replies <- metricsReply{id: id, body: bytes.Clone(body)}:
			default: // an earlier answer nobody took: a timed-out scrape's
			}
			continue
		}
		m.post(evCtl{pid: pid, msg: string(msg)})
	}
}

// onControl handles a worker's READY and heartbeats (which may recycle it:
// recycle.go). Any message is a sign of life.
func (m *Master) onControl(pid int, msg string) {
	p := m.procs[pid]
	if p == nil {
		return
	}
	now := m.env.now()
	p.lastHB = now
	if n, r, ok := wire.ParseHeartbeat([]byte(msg)); ok {
		if n >= 0 {
			p.conns = n
		}
		if r >= 0 {
			p.requests = r
		}
		m.checkRecycle(p)
		return
	}
	switch msg {
	case wire.MsgReady:
		if p.state != stateStarting {
			return
		}
		p.state = stateReady
		p.readyAt = now
		m.noteReadyRSS(p)
		m.handoffReady(p)
		m.log.Info("worker ready", "slot", p.slot, "gen", p.gen, "pid", pid, "after", now.Sub(p.started).Round(time.Microsecond))
		s := m.slots[p.slot]
		if s != nil && s.paused && s.cur == p {
			if err := m.ls.resumeSlot(s.index); err != nil {
				m.log.Error("cannot steer connections back to a slot", "slot", s.index, "err", err)
			}
			s.paused = false
		}
		if s != nil && p.recycle != "" && p.retired == nil {
			m.recycleReady(s, p)
			return
		}
		if s == nil || !p.reload || p.retired != nil {
			return
		}
		p.reload = false
		if s.next == p {
			// A reload's replacement is serving: drain the one it replaces.
			old := s.cur
			s.cur, s.next = p, nil
			if old != nil {
				m.stopProc(old, wire.MsgStop)
			}
		}
		m.reloadNext()
	default:
		m.log.Warn("unknown control message", "pid", pid, "msg", msg)
	}
}
