package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/prefork/prefork/buildinfo"
)

// WorkerLabel is the label the master adds to every series of a worker: its
// slot number, stable across restarts (never the pid).
const WorkerLabel = "worker"

// Master holds the master's own series. Its fields are safe for concurrent
// use (the supervisor goroutine sets them, scrapes read them).
type Master struct {
	Registry       *prometheus.Registry
	WorkersDesired prometheus.Gauge
	WorkersRunning prometheus.Gauge
	Restarts       *prometheus.CounterVec // by reason
	Reloads        prometheus.Counter
	Upgrades       *prometheus.CounterVec // by result
}

// Upgrade results for Master.Upgrades (binary upgrade in place, USR2).
const (
	UpgradeOK          = "ok"           // the new binary runs the master and every worker
	UpgradeCheckFailed = "check_failed" // the pre-flight check of the new binary failed: nothing changed
	UpgradeExecFailed  = "exec_failed"  // execve(2) of the new binary failed: the old master goes on
	UpgradeRolledBack  = "rolled_back"  // the new binary's workers did not start: back on the old binary
)

// Restart reasons for Master.Restarts.
const (
	RestartExited   = "exited"   // the worker exited with a status
	RestartSignaled = "signaled" // it was killed by a signal it did not expect
	RestartHung     = "hung"     // it stopped heartbeating and was aborted
	// Recycled: replaced as in a reload (new worker ready first, the old one
	// drained) once it had served --max-requests (+ jitter) requests, or its
	// RSS passed --max-worker-rss.
	RestartMaxRequests = "max_requests"
	RestartMaxRSS      = "max_rss"
)

// NewMaster builds the master's registry: its series, its process collector
// (no worker label: these are the master's own), and prefork_build_info.
func NewMaster() *Master {
	m := &Master{
		Registry: prometheus.NewRegistry(),
		WorkersDesired: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "workers_desired",
			Help: "Worker slots the master keeps."}),
		WorkersRunning: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "workers_running",
			Help: "Slots whose worker is ready and serving."}),
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "worker_restarts_total",
			Help: "Workers replaced, by reason: after an unexpected exit (exited, signaled, hung), or recycled (max_requests, max_rss)."}, []string{"reason"}),
		Reloads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "reloads_total",
			Help: "Rolling reloads started (HUP)."}),
		Upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "upgrades_total",
			Help: "Binary upgrades in place (USR2, prefork upgrade) by result; counted across the upgrades' execs."}, []string{"result"}),
	}
	for _, r := range []string{UpgradeOK, UpgradeCheckFailed, UpgradeExecFailed, UpgradeRolledBack} {
		m.Upgrades.WithLabelValues(r)
	}
	for _, r := range []string{RestartExited, RestartSignaled, RestartHung, RestartMaxRequests, RestartMaxRSS} {
		m.Restarts.WithLabelValues(r)
	}
	version, revision := buildVersion()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}})
	build.Set(1)
	m.Registry.MustRegister(m.WorkersDesired, m.WorkersRunning, m.Restarts, m.Reloads, m.Upgrades, build,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func buildVersion() (version, revision string) {
	return buildinfo.String(), buildinfo.Revision()
}

// DecodeWorker decodes a worker's Encode output and adds worker="slot" to
// every series.
func DecodeWorker(slot int, b []byte) ([]*dto.MetricFamily, error) {
	if err := checkFraming(b); err != nil {
		return nil, fmt.Errorf("metrics: decode worker %d: %w", slot, err)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	value := strconv.Itoa(slot)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("metrics: decode worker %d: %w", slot, err)
		}
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(WorkerLabel), Value: proto.String(value)})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
		// A family the text exposition cannot write (an unknown type, a
		// series without the value of its type) would be cut off halfway
		// through /metrics, corrupting what follows it: the answer is
		// refused whole, like one that does not decode.
		if _, err := expfmt.MetricFamilyToText(io.Discard, mf); err != nil {
			return nil, fmt.Errorf("metrics: worker %d sent family %q: %w", slot, mf.GetName(), err)
		}
		out = append(out, mf)
	}
}

// checkFraming refuses a body whose length prefixes claim more bytes than
// it holds: expfmt's decoder allocates what a prefix claims before reading
// it, so 18 bytes claiming a terabyte killed the master (out of memory).
func checkFraming(b []byte) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errors.New("length prefix past the end of the answer")
		}
		b = b[k+int(n):]
	}
	return nil
}

// Merge joins metric families of the same name (from several workers) into
// one family each, sorted by name.
func Merge(sets ...[]*dto.MetricFamily) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, set := range sets {
		for _, mf := range set {
			if have, ok := byName[mf.GetName()]; ok {
				have.Metric = append(have.Metric, mf.Metric...)
				continue
			}
			byName[mf.GetName()] = mf
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// ScrapeSuccess builds prefork_worker_scrape_success: 1 per slot whose worker
// answered this scrape, 0 per slot that was missing.
func ScrapeSuccess(ok map[int]bool) *dto.MetricFamily {
	mf := &dto.MetricFamily{
		Name: proto.String(prometheus.BuildFQName(Namespace, "", "worker_scrape_success")),
		Help: proto.String("Whether the slot's worker answered this scrape within the gather timeout (0: its series are missing)."),
		Type: dto.MetricType_GAUGE.Enum(),
	}
	slots := make([]int, 0, len(ok))
	for s := range ok {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	for _, s := range slots {
		v := 0.0
		if ok[s] {
			v = 1
		}
		mf.Metric = append(mf.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: proto.String(WorkerLabel), Value: proto.String(strconv.Itoa(s))}},
			Gauge: &dto.Gauge{Value: proto.Float64(v)},
		})
	}
	return mf
}
