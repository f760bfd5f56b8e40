package worker

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/metrics"
)

// snapshot is what a worker's collector reports: the loop's counters and the
// protocol's request count, copied on the loop thread.
type snapshot struct {
	Stats    loop.Stats
	Requests uint64
	Proto    string
}

// newRegistry returns the worker's private registry: the loop's series, read
// from snap at each gather, and the standard process and Go collectors. The
// registry is gathered on the loop thread (sendMetrics runs there), so snap
// reads loop state without locks.
func newRegistry(snap func() snapshot) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&loopCollector{snapshot: snap})
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(collectors.NewGoCollector())
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, labels, nil)
}

var (
	descAccepted    = desc("connections_accepted_total", "Connections accepted.")
	descActive      = desc("connections_active", "Connections open now.")
	descClosed      = desc("connections_closed_total", "Connections closed, by reason.", "reason")
	descRequests    = desc("requests_total", "Requests answered (HTTP responses, calc frames, echo reads).", "proto")
	descRead        = desc("read_bytes_total", "Bytes read from connections.")
	descWritten     = desc("written_bytes_total", "Bytes written to connections.")
	descAcceptEmpty = desc("accept_empty_wakeups_total", "Listener wake-ups whose accept found no connection (another worker took it: the thundering-herd cost).")
	descAcceptErr   = desc("accept_errors_total", "accept4 errors other than EAGAIN and ECONNABORTED.")
	descAcceptPause = desc("accept_paused_total", "Times the worker stopped accepting at --max-conns (new connections then wait in the kernel's backlog).")
	descAcceptShed  = desc("accept_shed_total", "Connections accepted and closed at once because the worker was out of file descriptors.")
	descPauses      = desc("backpressure_pauses_total", "Times reading from a connection stopped because its pending output passed the high-water mark.")
	descBufIn       = desc("buffered_input_bytes", "Unconsumed input held by connections.")
	descBufOut      = desc("buffered_output_bytes", "Output held by connections, waiting for the kernel to take it.")
	descWakeups     = desc("loop_wakeups_total", "epoll_wait returns.")
	descEvents      = desc("loop_events_per_wait", "Events returned per epoll_wait.")
	descTurn        = desc("loop_turn_seconds", "Time a loop turn spends handling the events of one epoll_wait.")
)

type loopCollector struct {
	snapshot func() snapshot
}

func (c *loopCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descActive, descClosed, descRequests, descRead,
		descWritten, descAcceptEmpty, descAcceptErr, descAcceptShed, descAcceptPause, descPauses, descBufIn, descBufOut,
		descWakeups, descEvents, descTurn} {
		ch <- d
	}
}

func (c *loopCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	st := &s.Stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descAccepted, st.Accepted)
	gauge(descActive, st.Active)
	for _, r := range loop.CloseReasons() {
		counter(descClosed, st.Closed[r], r.String())
	}
	counter(descRequests, s.Requests, s.Proto)
	counter(descRead, st.ReadBytes)
	counter(descWritten, st.WrittenBytes)
	counter(descAcceptEmpty, st.AcceptEmpty)
	counter(descAcceptErr, st.AcceptErrors)
	counter(descAcceptShed, st.AcceptShed)
	counter(descAcceptPause, st.AcceptPaused)
	counter(descPauses, st.Paused)
	gauge(descBufIn, st.InputBuffered)
	gauge(descBufOut, st.OutputBuffered)
	counter(descWakeups, st.Wakeups)

	// The loop counts in power-of-two buckets (see loop.Stats); turn them
	// into cumulative Prometheus buckets. The last loop bucket is the
	// overflow, counted only in +Inf.
	ev := map[float64]uint64{}
	var cum uint64
	for i := 0; i < len(st.EventsPerWait)-1; i++ {
		cum += st.EventsPerWait[i]
		ev[math.Exp2(float64(i))-1] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descEvents, st.Wakeups, float64(st.Events), ev)

	turn := map[float64]uint64{}
	cum = 0
	var turns uint64
	for _, n := range st.TurnNanos {
		turns += n
	}
	for i := 0; i < len(st.TurnNanos)-1; i++ {
		cum += st.TurnNanos[i]
		turn[math.Exp2(float64(i))*1e-6] = cum // bucket i: under 2^i µs
	}
	ch <- prometheus.MustNewConstHistogram(descTurn, turns, float64(st.TurnNanosSum)/1e9, turn)
}

// Requester is implemented by protocol handlers that count requests; the
// worker reports the count as prefork_requests_total{proto}.
type Requester interface {
	Requests() uint64
}
