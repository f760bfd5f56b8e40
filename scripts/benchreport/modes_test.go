package main

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	for _, tc := range []struct {
		name       string
		begin, end string
		want       []float64
		err        bool
	}{
		{name: "master and workers", begin: "10:100 11:50 12:70", end: "10:150 11:250 12:90", want: []float64{0.5, 2, 0.2}},
		{name: "a worker started during the run is left out", begin: "10:100 11:50", end: "10:100 11:60 13:5", want: []float64{0, 0.1}},
		{name: "another root", begin: "9:1", end: "10:5", err: true},
		{name: "malformed", begin: "10-100", end: "10:100", err: true},
		{name: "empty", begin: "", end: "10:1", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := procCPU(tc.begin, tc.end, 100)
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Errorf("procCPU(%q, %q): got %v, %v; want %v, error %v", tc.begin, tc.end, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	vs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := quantile(vs, tc.q); got != tc.want {
			t.Errorf("quantile(1..10, %v): got %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing: got %v, want 0", got)
	}
}

// TestUnevenLoad runs the generator against a loopback server: heavy
// connections send several times what light ones send, nothing fails.
func TestUnevenLoad(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Microsecond) // a latency the sleeps can scale
		_, _ = io.WriteString(w, "Hello, World!")
	}))
	defer srv.Close()
	// The ratio needs some requests behind it: on a machine that stalls the
	// client for most of a run, run again (up to 3 times).
	var r unevenResult
	for try := 0; try < 3; try++ {
		var err error
		r, err = unevenLoad(strings.TrimPrefix(srv.URL, "http://"), 8, 2, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.errors != 0 {
			t.Fatalf("got %d errors, want none", r.errors)
		}
		if r.heavyPer >= 50 {
			break
		}
	}
	t.Logf("%d requests, %.1f per heavy connection, %.1f per light one", r.requests, r.heavyPer, r.lightPer)
	if r.heavyPer < 20 {
		t.Fatalf("only %.0f requests per heavy connection in 3 runs of 1 s", r.heavyPer)
	}
	// Paced to a tenth: a light connection may be one token ahead, or have
	// its last token unused.
	if want := r.heavyPer / 10; math.Abs(r.lightPer-want) > 1.5 {
		t.Errorf("requests per light connection: got %.1f, want %.1f ± 1.5 (a tenth of the heavy ones')", r.lightPer, want)
	}
	if r.p50 <= 0 || r.p99 < r.p50 {
		t.Errorf("latency: p50 %v p99 %v", r.p50, r.p99)
	}
	if f := strings.Fields(r.String()); len(f) != 5 {
		t.Errorf("output %q: want 5 fields", r.String())
	}
}

// TestModesSection prints section 9 from small results files.
func TestModesSection(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"modes-balance.tsv": "reuseport\t64\t22 14 10 18\nshared\t64\t40 8 8 8\nhandoff\t64\t16 16 16 16\nhandoff\t1000\t250 250 251 249\n",
		"modes-uneven.tsv":  "reuseport\t1\t50000\t900\t3000\t0\t9.8\t0.10 2.00 1.00 1.50 0.50\nhandoff\t1\t52000\t800\t2000\t0\t10.1\t0.30 1.20 1.10 1.00 1.00\nshared\t1\t48000\t100\t7000\t0\t10.0\t0.00 0.82 0.00 0.00 0.00\n",
		"modes-cost.tsv":    "handoff\t1\tclose\t20000\t1000\t5000\t0\t3\t0\t80000\t4.0\t1.0\nhandoff\t1\tkeepalive\t90000\t600\t2000\t0\t3\t0\t360000\t4.0\t0.01\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	c := &reportConfig{conns: 64, duration: 4, modesWorkers: 4}
	if err := report(&out, c, dir); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"### 9. Listener modes: prefork --workers 4",
		"| handoff | 64 | 16 / 16 / 16 / 16 | 0 |",
		"| shared | 64 | 40 / 8 / 8 / 8 | 32 |",
		"| handoff | 1000 | 250 / 250 / 251 / 249 | 2 |",
		"| reuseport | 50.0k | 900 µs | 3.00 ms | 0 | 9.8 | 4.00 | 0.10 s |",
		"| shared | 48.0k | 100 µs | 7.00 ms | 0 | 10.0 | ∞ | 0.00 s |",
		"| new connection per request | handoff | 20.0k | 20.0k | 1.00 ms | 5.00 ms | 0 | 25.0 % |",
		"| keep-alive | handoff | 90.0k | 90.0k | 600 µs | 2.00 ms | 0 | 0.2 % |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q; got:\n%s", want, got)
		}
	}
	// Nothing of it without the files.
	out.Reset()
	if err := report(&out, c, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Listener modes") {
		t.Errorf("section 9 without results: %q", out.String())
	}
}

func TestActive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.txt")
	body := `# TYPE prefork_connections_active gauge
prefork_connections_active{worker="0"} 16
prefork_connections_active{worker="2"} 15
prefork_connections_active_other{worker="1"} 99
prefork_connections_accepted_total{worker="1"} 7
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run("active", []string{"-workers", "3", path}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "16 0 15\n" {
		t.Errorf("active: got %q, want %q", got, "16 0 15\n")
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	_ = os.WriteFile(empty, nil, 0o644)
	if err := run("active", []string{"-workers", "3", empty}, nil, &out); err == nil {
		t.Error("active without the series: got no error")
	}
}
