package master

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// Handoff mode's glue between the supervisor and the acceptor (acceptor.go).
// The supervisor owns the worker table; the acceptor owns the placement
// state. A worker's peer is created with the worker, added to the acceptor
// when the worker says READY, and removed (synchronously) before the worker
// is told to STOP, RETIRE or QUIT, or when it exits.

// peer is one worker process as the acceptor sees it.
type peer struct {
	pid, slot int
	send      fdSender
	// closed is the worker's last GONE report: how many of the connections
	// handed to it are no longer open. Written by readControl, read by the
	// acceptor.
	closed atomic.Uint64

	// The acceptor's goroutine only.
	handed    uint64    // connections sent to it
	fullUntil time.Time // its socket was full: skipped until then (zero: not full)
	dead      bool      // removed, or a send found it gone
	handoffs  prometheus.Counter
}

// load is the acceptor's estimate of p's open connections: handed minus
// the closes p has reported. Reports lag, so it errs high, never low (see
// doc.go).
func (p *peer) load() int64 {
	c := p.closed.Load()
	if c >= p.handed {
		return 0
	}
	return int64(p.handed - c)
}

// reportClosed records a GONE report (from readControl's goroutine).
func (p *peer) reportClosed(n uint64) {
	for {
		old := p.closed.Load()
		if n <= old || p.closed.CompareAndSwap(old, n) {
			return // cumulative: an older report never lowers it
		}
	}
}

// fdSender sends one datagram with ancillary data (SCM_RIGHTS) without
// blocking: unix.EAGAIN when the socket is full.
type fdSender interface {
	sendFDs(msg, oob []byte) error
}

// rawSender sends on the master's end of a control socket from the
// acceptor's goroutine. RawConn.Control holds a reference to the fd for the
// call, so a supervisor closing the socket of a worker that exited cannot
// make the number mean another file mid-send; it takes no write lock, so a
// supervisor's Send waiting on a full socket does not hold the acceptor up.
// Each sendmsg is one SEQPACKET datagram: it never interleaves with another.
type rawSender struct{ rc syscall.RawConn }

func (s rawSender) sendFDs(msg, oob []byte) error {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		for {
			_, serr = unix.SendmsgN(int(fd), msg, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			if serr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err // closed: the worker has exited
	}
	if serr != nil {
		return os.NewSyscallError("sendmsg", serr)
	}
	return nil
}

// newPeer returns worker pid's peer, or nil if its control socket cannot
// carry fds (the supervisor tests' fakes).
func (m *Master) newPeer(pid, slot int, ctl control) *peer {
	u, ok := ctl.(unixControl)
	if !ok || m.handoff == nil {
		return nil
	}
	rc, err := u.c.SyscallConn()
	if err != nil {
		return nil
	}
	return &peer{pid: pid, slot: slot, send: rawSender{rc},
		handoffs: m.handoff.Handoffs.WithLabelValues(strconv.Itoa(slot))}
}

// handoffReady makes a worker that said READY a target for connections.
func (m *Master) handoffReady(p *proc) {
	if m.acc != nil && p.peer != nil && !m.stopping && p.retired == nil {
		m.acc.add(p.peer)
	}
}

// handoffStop takes a worker out of placement before it is told how to
// stop, and returns the message to send. Once it returns, every FDS message
// to the worker is in its socket, ahead of the stop.
//
// A reload's or a scale-down's STOP becomes RETIRE (the worker serves on for
// a moment, then drains): a connection handed in the instant before has its
// first request read before the drain, which would close it as idle. A TERM
// (m.stopping) stays STOP.
func (m *Master) handoffStop(p *proc, how string) string {
	if m.acc == nil || p.peer == nil {
		return how
	}
	m.acc.remove(p.peer)
	if how == wire.MsgStop && !m.stopping {
		return wire.MsgRetire
	}
	return how
}

// handoffExit forgets a worker that exited. Sends to it fail from now on
// anyway (its socket is closed); this spares the acceptor the failure.
func (m *Master) handoffExit(p *proc) {
	if m.acc != nil && p.peer != nil {
		pr := p.peer
		m.acc.do(func() {
			pr.dead = true
			m.acc.removePeer(pr)
		})
	}
}

// startAcceptor starts the acceptor's goroutine (handoff mode).
func (m *Master) startAcceptor() {
	if m.acc != nil {
		go m.acc.run()
	}
}

// stopAccepting stops the acceptor: it accepts what the kernel has queued,
// hands it out, and ends. The listening sockets stay open (the caller closes
// them).
func (m *Master) stopAccepting() {
	if m.acc != nil {
		m.acc.stop()
	}
}

// newHandoff sets up handoff mode's acceptor and series.
func (m *Master) newHandoff() error {
	m.handoff = metrics.NewHandoff(m.metrics.Registry)
	acc, err := newAcceptor(m.ls.shared, m.log, m.handoff)
	if err != nil {
		return err
	}
	m.acc = acc
	m.accNow.Store(acc)
	m.metrics.Registry.MustRegister(&acceptorCollector{m: m, addrs: m.ls.addrs})
	return nil
}

// restartAcceptor replaces an acceptor that handed over for an exec that
// failed: a new one on the same listeners, given every worker that was a
// target (their counts kept).
func (m *Master) restartAcceptor() error {
	acc, err := newAcceptor(m.ls.shared, m.log, m.handoff)
	if err != nil {
		return err
	}
	m.acc = acc
	m.accNow.Store(acc)
	go acc.run()
	for _, p := range m.procs {
		if p.state == stateReady && p.peer != nil {
			p.peer.dead = false
			m.handoffReady(p)
		}
	}
	return nil
}

var (
	descAcceptBacklog = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", "acceptor_backlog_connections"),
		"Connections the kernel has queued on the listener, not yet accepted by the master's acceptor (handoff mode; TCP_INFO).",
		[]string{"listener"}, nil)
	descHandoffOpen = prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", "handoff_open_connections"),
		"The acceptor's estimate of each slot's open connections, which placement uses: handed minus the closes its worker reported (compare prefork_connections_active).",
		[]string{metrics.WorkerLabel}, nil)
)

// acceptorCollector reads the acceptor's state on its goroutine at each
// scrape: the listen queues and the placement estimates.
type acceptorCollector struct {
	m     *Master
	addrs []string
}

func (c *acceptorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAcceptBacklog
	ch <- descHandoffOpen
}

func (c *acceptorCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.m.accNow.Load()
	backlog := make([]float64, len(c.addrs))
	open := map[int]int64{}
	ok := a.call(func() {
		for i, ln := range a.lns {
			if ln.kind != wire.ConnTCP || ln.dead || i >= len(backlog) {
				continue
			}
			// For a listening socket tcpi_unacked is the accept queue's
			// length (sk_ack_backlog).
			if info, err := unix.GetsockoptTCPInfo(ln.fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				backlog[i] = float64(info.Unacked)
			}
		}
		for _, p := range a.peers {
			open[p.slot] += p.load()
		}
	}, time.Second)
	if !ok {
		return
	}
	for i, a := range c.addrs {
		ch <- prometheus.MustNewConstMetric(descAcceptBacklog, prometheus.GaugeValue, backlog[i], a)
	}
	for slot, n := range open {
		ch <- prometheus.MustNewConstMetric(descHandoffOpen, prometheus.GaugeValue, float64(n), strconv.Itoa(slot))
	}
}
