package worker

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/metrics"
)

func testSnapshot() snapshot {
	st := loop.Stats{Accepted: 7, ReadBytes: 100, WrittenBytes: 200, Wakeups: 4, Events: 9, Active: 2}
	st.Closed[loop.ReasonPeer] = 5
	st.EventsPerWait[1] = 1 // one wait with 1 event
	st.EventsPerWait[3] = 3 // three with 4..7
	st.TurnNanos[2] = 4     // four turns of 2..3 µs
	st.TurnNanosSum = 10_000
	return snapshot{Stats: st, Requests: 42, Proto: "http"}
}

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

// TestWorkerRoundTrip encodes a worker registry and decodes it as the master
// does: every series gains worker="slot", values survive, and the loop's
// power-of-two buckets become cumulative histogram buckets.
func TestWorkerRoundTrip(t *testing.T) {
	reg := newRegistry(testSnapshot)
	body, err := metrics.Encode(reg)
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := metrics.DecodeWorker(2, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if got := label(m, metrics.WorkerLabel); got != "2" {
				t.Fatalf("%s: worker label %q, want \"2\"", mf.GetName(), got)
			}
		}
	}
	checks := map[string]float64{
		"prefork_connections_accepted_total": 7,
		"prefork_connections_active":         2,
		"prefork_read_bytes_total":           100,
		"prefork_written_bytes_total":        200,
	}
	for name, want := range checks {
		mf := find(mfs, name)
		if mf == nil {
			t.Fatalf("no %s", name)
		}
		m := mf.Metric[0]
		got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	req := find(mfs, "prefork_requests_total")
	if req == nil || label(req.Metric[0], "proto") != "http" || req.Metric[0].GetCounter().GetValue() != 42 {
		t.Errorf("prefork_requests_total: got %v", req)
	}
	closed := find(mfs, "prefork_connections_closed_total")
	if closed == nil || len(closed.Metric) != len(loop.CloseReasons()) {
		t.Fatalf("closed_total: want one series per reason, got %v", closed)
	}
	ev := find(mfs, "prefork_loop_events_per_wait").Metric[0].GetHistogram()
	if ev.GetSampleCount() != 4 || ev.GetSampleSum() != 9 {
		t.Errorf("events per wait: count %d sum %v, want 4 and 9", ev.GetSampleCount(), ev.GetSampleSum())
	}
	for _, b := range ev.Bucket {
		want := map[float64]uint64{0: 0, 1: 1, 3: 1, 7: 4}[b.GetUpperBound()]
		if b.GetUpperBound() <= 7 && b.GetCumulativeCount() != want {
			t.Errorf("events bucket le=%v: got %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	turn := find(mfs, "prefork_loop_turn_seconds").Metric[0].GetHistogram()
	if turn.GetSampleCount() != 4 || turn.GetSampleSum() != 10e-6 {
		t.Errorf("turn seconds: count %d sum %v, want 4 and 1e-5", turn.GetSampleCount(), turn.GetSampleSum())
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines"} {
		if find(mfs, name) == nil {
			t.Errorf("no %s from the standard collectors", name)
		}
	}
}
