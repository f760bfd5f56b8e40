package worker

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/wire"
)

// handoff is the worker's side of handoff mode (wire/handoff.go): FDS
// messages from the master bring connection fds, which the worker adds to
// its loop as if it had accepted them, and GONE reports tell the master how
// many of them are no longer open. Everything here runs on the loop thread.
//
// In the other modes no FDS message comes; one that did would have its fds
// closed (enabled is false), so a confused master cannot leak fds into a
// worker.
type handoff struct {
	ctl     int
	l       *loop.Loop
	log     *slog.Logger
	enabled bool
	oob     []byte // room for MaxHandoffFDs rights, reused

	received uint64      // fds the master handed (announced by FDS), adopted or not
	lastSent time.Time   // when the last GONE went out
	soon     *loop.Timer // a GONE report due, at most reportEvery after the last
	refused  uint64      // of those, closed at once: truncated messages, AddConn errors
	reported uint64      // the last GONE the master took
	warned   uint64      // refusals logged so far (1st, 2nd, 4th, 8th...)
}

func newHandoff(ctl int, l *loop.Loop, log *slog.Logger, enabled bool) *handoff {
	return &handoff{ctl: ctl, l: l, log: log, enabled: enabled,
		oob: make([]byte, unix.CmsgSpace(wire.MaxHandoffFDs*4))}
}

// recv reads one control datagram into buf with recvmsg: fds passed with it
// arrive close-on-exec (MSG_CMSG_CLOEXEC), so they never leak into a program
// a handler starts, even for the instant before the loop has them. A
// truncated control message (MSG_CTRUNC: the oob buffer was short, or the
// worker ran out of fds and the kernel installed only some) returns what did
// arrive with trunc set; the caller closes them.
func (h *handoff) recv(buf []byte) (n int, fds []int, trunc bool, err error) {
	var oobn, flags int
	for {
		n, oobn, flags, _, err = unix.Recvmsg(h.ctl, buf, h.oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, nil, false, err
	}
	if oobn > 0 {
		fds = parseRights(h.oob[:oobn])
	}
	return n, fds, flags&unix.MSG_CTRUNC != 0, nil
}

// parseRights returns the fds of every SCM_RIGHTS message in oob.
func parseRights(oob []byte) []int {
	var fds []int
	for len(oob) > 0 {
		hdr, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		if hdr.Level == unix.SOL_SOCKET && hdr.Type == unix.SCM_RIGHTS {
			got, err := unix.ParseUnixRights(&unix.SocketControlMessage{Header: hdr, Data: data})
			if err == nil {
				fds = append(fds, got...)
			}
		}
		oob = rest
	}
	return fds
}

// take handles one control datagram's fds. It reports whether msg was an
// FDS message (then handled here: its fds adopted, or closed if anything is
// wrong with it). The fds of any other message are closed: none is meant to
// carry any.
func (h *handoff) take(msg []byte, fds []int, trunc bool) bool {
	if !wire.IsHandoffFDs(msg) {
		if len(fds) > 0 {
			h.log.Warn("control message with fds attached: closing them", "fds", len(fds))
			closeFDs(fds)
		}
		return false
	}
	kinds, ok := wire.ParseHandoffFDs(msg)
	handed := max(len(kinds), len(fds))
	h.received += uint64(handed)
	switch {
	case !h.enabled, !ok, trunc, len(fds) != len(kinds):
		// MSG_CTRUNC or a count that does not match: some fds were lost on
		// the way (the kernel closed them), and which of those that came
		// are what cannot be known. Close every one; the clients see a
		// close, and GONE tells the master they are gone.
		closeFDs(fds)
		h.refused += uint64(handed)
		h.warn("handoff message refused: its connections are closed", "handed", handed,
			"arrived", len(fds), "truncated", trunc, "well_formed", ok, "handoff_mode", h.enabled)
	default:
		for i, fd := range fds {
			if err := h.l.AddConn(fd, kinds[i] == wire.ConnTCP); err != nil {
				h.refused++
				h.warn("cannot adopt a connection", "err", err)
			}
		}
	}
	// An FDS message is answered with the current count, within
	// reportEvery, so the master's view of a worker it is handing
	// connections to is a few milliseconds old at most.
	h.reportSoon()
	return true
}

// reportEvery bounds the rate of the GONE reports an FDS message calls for:
// a master handing thousands of connections a second gets a report per
// worker per reportEvery, not one per message (each is a wake-up of the
// master's reader of this worker's socket).
const reportEvery = 10 * time.Millisecond

// reportSoon reports now if the last report is reportEvery old, else once
// reportEvery has passed since it.
func (h *handoff) reportSoon() {
	if h.soon != nil {
		return // due already
	}
	if wait := reportEvery - h.l.Now().Sub(h.lastSent); wait > 0 {
		h.soon = h.l.AfterFunc(wait, func() {
			h.soon = nil
			h.report()
		})
		return
	}
	h.report()
}

// report sends GONE when the count changed since the master last took it.
// A send the socket refuses (EAGAIN) is tried again at the next report.
func (h *handoff) report() {
	if !h.enabled {
		return
	}
	open := uint64(h.l.Conns())
	gone := uint64(0)
	if h.received > open {
		gone = h.received - open
	}
	if gone == h.reported {
		return
	}
	if _, err := unix.Write(h.ctl, wire.Gone(gone)); err != nil {
		return // EAGAIN: the master is behind; the heartbeat tries again
	}
	h.reported = gone
	h.lastSent = h.l.Now()
}

func (h *handoff) warn(msg string, args ...any) {
	h.warned++
	if h.warned&(h.warned-1) == 0 {
		h.log.Warn(msg, append(args, "count", h.warned)...)
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd) // never retried: see loop/sys.go
	}
}

// collector exports the handoff counters; gathered on the loop thread like
// the loop's own series (sendMetrics), so it reads plain integers.
func (h *handoff) collector() prometheus.Collector { return handoffCollector{h} }

type handoffCollector struct{ h *handoff }

var (
	descHandoffReceived = desc("handoff_received_total", "Connections the master handed to this worker (handoff mode).")
	descHandoffRefused  = desc("handoff_refused_total", "Handed connections this worker closed at once: truncated or malformed FDS messages, fds it could not add to its loop.")
)

func (c handoffCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHandoffReceived
	ch <- descHandoffRefused
}

func (c handoffCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descHandoffReceived, prometheus.CounterValue, float64(c.h.received))
	ch <- prometheus.MustNewConstMetric(descHandoffRefused, prometheus.CounterValue, float64(c.h.refused))
}
