package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Handoff is the master's acceptor's series (handoff mode). The counters are
// safe for concurrent use; the acceptor's goroutine updates them.
type Handoff struct {
	// Handoffs counts connections handed to each slot's worker (one fd
	// sent; the worker's own prefork_handoff_received_total is the other
	// end).
	Handoffs *prometheus.CounterVec // by worker (slot)
	// Errors counts what went wrong, by reason (HandoffAccept...).
	Errors *prometheus.CounterVec
	// Queue is the connections the acceptor holds: accepted, not handed yet.
	Queue prometheus.Gauge
	// Batch is fds per sendmsg.
	Batch prometheus.Histogram
	// Wakeups counts the acceptor's epoll_wait returns.
	Wakeups prometheus.Counter
}

// Handoff error reasons. Connections re-placed (socket_full, worker_gone)
// reached another worker; no_worker ones were closed: those are the lost.
const (
	HandoffAccept     = "accept"      // accept4 failed (not EAGAIN, ECONNABORTED), per failure
	HandoffShed       = "shed"        // the master was out of fds: one connection accepted and closed, per connection
	HandoffSocketFull = "socket_full" // the chosen worker's control socket was full (EAGAIN): re-placed, per connection
	HandoffWorkerGone = "worker_gone" // the send failed because the worker had gone: re-placed, per connection
	HandoffNoWorker   = "no_worker"   // no worker took it in time (or the master stopped): closed, per connection
)

// HandoffReasons lists every reason, so each series exists from the start.
var HandoffReasons = []string{HandoffAccept, HandoffShed, HandoffSocketFull, HandoffWorkerGone, HandoffNoWorker}

// NewHandoff registers the acceptor's series on reg.
func NewHandoff(reg prometheus.Registerer) *Handoff {
	h := &Handoff{
		Handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "handoffs_total",
			Help: "Connections the master accepted and handed to the slot's worker (handoff mode)."}, []string{WorkerLabel}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "handoff_errors_total",
			Help: "Handoff mode's failures, by reason: accept (accept4 errors), shed (master out of fds: closed), socket_full and worker_gone (the connection went to another worker), no_worker (closed: no worker could take it)."},
			[]string{"reason"}),
		Queue: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "acceptor_queue_connections",
			Help: "Connections the master's acceptor has accepted and not yet handed to a worker."}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "handoff_batch_fds",
			Help:    "Connection fds per sendmsg to a worker.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 253}}),
		Wakeups: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "acceptor_wakeups_total",
			Help: "The master's acceptor's epoll_wait returns."}),
	}
	for _, r := range HandoffReasons {
		h.Errors.WithLabelValues(r)
	}
	reg.MustRegister(h.Handoffs, h.Errors, h.Queue, h.Batch, h.Wakeups)
	return h
}
