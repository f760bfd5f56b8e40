package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func find(mfs []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestMergeAndScrapeSuccess(t *testing.T) {
	reg := prometheus.NewRegistry()
	acc := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "connections_accepted_total", Help: "h"})
	acc.Add(7)
	reg.MustRegister(acc, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections_active", Help: "h"}))
	body, err := Encode(reg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := DecodeWorker(0, body)
	b, _ := DecodeWorker(1, body)
	merged := Merge(a, b)
	got := find(merged, "prefork_connections_accepted_total")
	if got == nil || len(got.Metric) != 2 {
		t.Fatalf("merged accepted_total: got %v, want two series", got)
	}
	for i := 1; i < len(merged); i++ {
		if merged[i-1].GetName() >= merged[i].GetName() {
			t.Fatalf("merge not sorted/unique at %s", merged[i].GetName())
		}
	}
	ss := ScrapeSuccess(map[int]bool{0: true, 2: false})
	var parts []string
	for _, m := range ss.Metric {
		parts = append(parts, label(m, WorkerLabel)+"="+map[float64]string{0: "0", 1: "1"}[m.GetGauge().GetValue()])
	}
	if got := strings.Join(parts, ","); got != "0=1,2=0" {
		t.Errorf("scrape success: got %s, want 0=1,2=0", got)
	}
}

func TestDecodeGarbage(t *testing.T) {
	if _, err := DecodeWorker(0, []byte{0xff, 0xff, 0xff, 0x01, 0x02}); err == nil {
		t.Error("decoding garbage: got no error")
	}
}

func TestMasterRegistry(t *testing.T) {
	m := NewMaster()
	m.WorkersDesired.Set(3)
	m.Restarts.WithLabelValues(RestartHung).Inc()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prefork_workers_desired", "prefork_workers_running", "prefork_worker_restarts_total",
		"prefork_reloads_total", "prefork_build_info", "process_resident_memory_bytes"} {
		if find(mfs, name) == nil {
			t.Errorf("no %s", name)
		}
	}
	for _, m := range find(mfs, "prefork_worker_restarts_total").Metric {
		if label(m, "reason") == RestartHung && m.GetCounter().GetValue() != 1 {
			t.Errorf("restarts{hung}: got %v, want 1", m.GetCounter().GetValue())
		}
	}
}
