package metrics

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"
)

// workerRegistry is a registry like a worker's: a counter, a gauge, a
// histogram and a labelled counter vector, set from the arguments.
func workerRegistry(t testing.TB, label string, v float64, n uint8) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	acc := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "connections_accepted_total", Help: "Accepted."})
	act := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections_active", Help: "Open."})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "Durations.", Buckets: []float64{.001, .01, .1, 1}})
	codes := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
		Help: "By code."}, []string{"code"})
	reg.MustRegister(acc, act, dur, codes)
	acc.Add(float64(n))
	act.Set(v)
	for i := 0; i < int(n%8); i++ {
		dur.Observe(v * float64(i))
	}
	if c, err := codes.GetMetricWithLabelValues(label); err == nil {
		c.Add(float64(n)) // a label value that is not UTF-8 is refused: no series
	}
	codes.WithLabelValues("2xx").Inc()
	return reg
}

// withWorker is mf with worker="slot" added to every series, labels sorted:
// what DecodeWorker must return for it.
func withWorker(mf *dto.MetricFamily, slot int) *dto.MetricFamily {
	mf = proto.Clone(mf).(*dto.MetricFamily)
	for _, m := range mf.Metric {
		var labels []*dto.LabelPair
		added := false
		for _, l := range m.Label {
			if !added && l.GetName() > WorkerLabel {
				labels = append(labels, &dto.LabelPair{Name: proto.String(WorkerLabel), Value: proto.String(strconv.Itoa(slot))})
				added = true
			}
			labels = append(labels, l)
		}
		if !added {
			labels = append(labels, &dto.LabelPair{Name: proto.String(WorkerLabel), Value: proto.String(strconv.Itoa(slot))})
		}
		m.Label = labels
	}
	return mf
}

// FuzzEncodeDecode: a worker's registry, whatever its values and label
// values, reaches the master as it was gathered, each series with its
// worker label added and nothing else changed.
func FuzzEncodeDecode(f *testing.F) {
	f.Add("5xx", 1.5, uint8(3), 0)
	f.Add("", math.Inf(-1), uint8(0), 7)
	f.Add("\xff\x00\"\\\n}", math.NaN(), uint8(255), -3)
	f.Add("worker", math.Copysign(0, -1), uint8(9), 1<<40)
	f.Fuzz(func(t *testing.T, label string, v float64, n uint8, slot int) {
		reg := workerRegistry(t, label, v, n)
		want, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		body, err := Encode(reg)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		got, err := DecodeWorker(slot, body)
		if err != nil {
			t.Fatalf("DecodeWorker of Encode's output: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("decoded %d families, gathered %d", len(got), len(want))
		}
		for i := range want {
			if w := withWorker(want[i], slot); !proto.Equal(got[i], w) {
				t.Fatalf("family %d:\n got %v\nwant %v", i, got[i], w)
			}
		}
	})
}

// FuzzDecodeWorker gives the master any bytes as a worker's METRICS answer
// (a worker that is buggy, or runs a program's own collectors): decoding
// never panics, every series it returns carries the slot's worker label
// with its labels sorted, and what it returns goes through the master's
// own scrape path (prometheus.Gatherers, then the text exposition) without
// a panic; what that path accepts is valid exposition text.
func FuzzDecodeWorker(f *testing.F) {
	good, err := Encode(workerRegistry(f, "5xx", 2, 3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 0)
	f.Add(good[:len(good)/2], 1)
	f.Add([]byte{0xff, 0xff, 0xff, 0x01, 0x02}, 2)
	f.Add([]byte{}, 3)
	f.Add([]byte{0x00}, 4)
	// Hand-made families: no name, a worker label already, a type its
	// values do not match, a duplicate series, a name that is not valid.
	for _, mf := range []*dto.MetricFamily{
		{Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}}}},
		{Name: proto.String("x_total"), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String(WorkerLabel), Value: proto.String("9")}},
			Counter: &dto.Counter{Value: proto.Float64(1)}}}},
		{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(1)}}}},
		{Name: proto.String("d"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{
			{Gauge: &dto.Gauge{Value: proto.Float64(1)}}, {Gauge: &dto.Gauge{Value: proto.Float64(2)}}}},
		{Name: proto.String("9 bad name{"), Type: dto.MetricType_UNTYPED.Enum(), Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String("a b"), Value: proto.String("\xff")}, {}},
			Untyped: &dto.Untyped{Value: proto.Float64(math.NaN())}}}},
		{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{
			Histogram: &dto.Histogram{Bucket: []*dto.Bucket{{UpperBound: proto.Float64(math.NaN())}, {}}}}}},
		{Name: proto.String("s"), Type: dto.MetricType(42).Enum(), Metric: []*dto.Metric{nil, {}}},
	} {
		var b bytes.Buffer
		if _, err := protodelim.MarshalTo(&b, mf); err != nil {
			f.Fatal(err)
		}
		f.Add(append(append([]byte(nil), good...), b.Bytes()...), 5)
	}
	f.Fuzz(func(t *testing.T, b []byte, slot int) {
		mfs, err := DecodeWorker(slot, b)
		if err != nil {
			if mfs != nil || !strings.Contains(err.Error(), "worker "+strconv.Itoa(slot)) {
				t.Fatalf("DecodeWorker: got %d families and error %v; want none and an error naming the slot", len(mfs), err)
			}
			return
		}
		value := strconv.Itoa(slot)
		for _, mf := range mfs {
			if mf == nil {
				t.Fatal("DecodeWorker returned a nil family")
			}
			for _, m := range mf.Metric {
				found := false
				for i, l := range m.Label {
					if i > 0 && m.Label[i-1].GetName() > l.GetName() {
						t.Fatalf("family %q: labels not sorted: %v", mf.GetName(), m.Label)
					}
					found = found || l.GetName() == WorkerLabel && l.GetValue() == value
				}
				if !found {
					t.Fatalf("family %q: a series without worker=%q: %v", mf.GetName(), value, m.Label)
				}
			}
		}

		// The master's path: its registry and the workers', gathered by
		// prometheus.Gatherers (which checks consistency), written as text.
		g := prometheus.Gatherers{prometheus.NewRegistry(), prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			return Merge(mfs, []*dto.MetricFamily{ScrapeSuccess(map[int]bool{slot: true})}), nil
		})}
		out, gerr := g.Gather()
		var text bytes.Buffer
		enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range out {
			if err := enc.Encode(mf); err != nil {
				t.Fatalf("encoding a family Gatherers let through (%v): %v\n%v", gerr, err, mf)
			}
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := p.TextToMetricFamilies(bytes.NewReader(text.Bytes())); err != nil {
			t.Fatalf("the exposition the master would serve does not parse: %v\n%s", err, text.Bytes())
		}
	})
}

// TestDecodeHugeLengthPrefix: what FuzzDecodeWorker found. A length prefix
// claiming a terabyte made expfmt's decoder allocate it: the master died of
// "out of memory" (fatal, not a panic) on an 18-byte answer.
func TestDecodeHugeLengthPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"terabyte", []byte("\x8c\x8c\x8c\x8c\x8c\"\v\x12\t\t\x00\x00\x00\x00\x00\x00\x00t")},
		{"one past the end", []byte{0x03, 0x0a, 0x01}},
		{"varint without end", []byte{0xff, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mfs, err := DecodeWorker(3, tc.b)
			if err == nil || mfs != nil {
				t.Fatalf("got %d families, %v; want an error", len(mfs), err)
			}
		})
	}
}
