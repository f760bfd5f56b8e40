package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/report.md with what the report prints")

// benchLabels are the -label flags scripts/bench passes.
var benchLabels = []string{
	"-label", "prefork=prefork", "-label", "nginx=nginx", "-label", "gnet=gnet",
	"-label", "fasthttp=fasthttp-prefork", "-label", "nethttp=net/http",
	"-label", "prefork-echo=prefork", "-label", "gnet-echo=gnet",
	"-label", "floor=floor (C, no parsing)", "-label", "floor-echo=floor (C)",
	"-label", "prefork-nethttp=prefork (httpd.NetHTTP)", "-label", "nethttp-mux=net/http",
	"-label", "prefork-static=prefork --root", "-label", "nginx-static=nginx",
}

// TestReport prints the tables of testdata/results (keep-alive: 3 rounds;
// pipelined: 2 rounds, no floor, one run without a CPU figure; echo; memory;
// syscalls; balance with a 0 and a missing source; adapter: 2 rounds of 2
// routes, one run without a CPU figure, and its memory; static: 2 rounds of
// a small and a large file, one run without a CPU figure) and compares them
// with testdata/report.md, which the tables of the script before benchreport
// matched column for column, less the rps/core columns (and the adapter
// tables, which came after it).
func TestReport(t *testing.T) {
	var out bytes.Buffer
	if err := run("report", append(slices.Clone(benchLabels), "testdata/results"), nil, &out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(out.String(), "\n")
	for i, w := range strings.Split(string(want), "\n") {
		if i >= len(got) {
			t.Fatalf("line %d: got nothing, want %q", i+1, w)
		}
		if got[i] != w {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, got[i], w)
		}
	}
	if n, m := len(got), len(strings.Split(string(want), "\n")); n != m {
		t.Errorf("got %d lines, want %d", n, m)
	}
}

func TestReportEmpty(t *testing.T) {
	var out bytes.Buffer
	if err := run("report", []string{t.TempDir()}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "" {
		t.Errorf("got %q, want nothing for no results", got)
	}
}

func TestPerCPU(t *testing.T) {
	tests := []struct {
		name string
		t    table
		want []float64
	}{
		{"requests per CPU second", table{{"a", "400000", "2"}, {"a", "300000", "1.5"}}, []float64{200000, 200000}},
		{"no CPU time: left out", table{{"a", "400000", "0"}, {"a", "100", "-"}, {"a", "100"}}, nil},
		{"no requests figure: left out", table{{"a", "", "2"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.perCPU(1, 2); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSyscallRow(t *testing.T) {
	c := &reportConfig{pipelineDepth: 16, labels: map[string]string{"nethttp": "net/http"}}
	tests := []struct {
		name string
		row  string
		want string
	}{
		{"top five of many, runtime calls left out of the second figure",
			"nethttp\t1\t100\t1000\tfutex\t400\tread\t100\twrite\t100\tepoll_wait\t50\tmmap\t50\tgetpid\t25\taccept4\t5",
			"| net/http | keep-alive | 100 | 10.00 | 2.55 | futex 4.00, read 1.00, write 1.00, epoll_wait 0.50, mmap 0.50 |"},
		{"pipelined", "x\t16\t200\t300\tread\t100",
			"| x | pipelined ×16 | 200 | 1.50 | 0.50 | read 0.50 |"},
		{"no requests: per 1", "x\t1\t0\t7\twrite\t7", "| x | keep-alive | 0 | 7.00 | 7.00 | write 7.00 |"},
		{"nothing traced", "x\t1\t50\t0", "| x | keep-alive | 50 | 0.00 | 0.00 |  |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syscallRow(c, strings.Split(tt.row, "\t")); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBalanceRow(t *testing.T) {
	tests := []struct {
		name string
		row  []string
		want string
	}{
		{"even", []string{"reuseport", "metrics", "500 500 500 500"}, "| reuseport | metrics | 500 / 500 / 500 / 500 | 1.00 |"},
		{"uneven", []string{"shared", "metrics", "1500 300 100 100"}, "| shared | metrics | 1500 / 300 / 100 / 100 | 15.00 |"},
		{"a worker with none", []string{"shared", "strace accept4", "2000 0"}, "| shared | strace accept4 | 2000 / 0 | ∞ |"},
		{"no counts", []string{"shared", "n/a: no series", ""}, "| shared | n/a: no series | | |"},
		{"no counts column", []string{"shared", "n/a"}, "| shared | n/a | | |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := balanceRow(tt.row); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDistinct(t *testing.T) {
	tab := table{{"a", "/x"}, {"b", "/x"}, {"a", "/y"}, {"b"}, {"b", "/y"}, {"a", "/x"}}
	if got, want := tab.distinct(1), []string{"/x", "/y"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := (table{}).distinct(1); got != nil {
		t.Errorf("empty table: got %v", got)
	}
}

func TestFine(t *testing.T) {
	for _, tt := range []struct {
		o    opt
		want string
	}{{some(6311.6), "6312"}, {some(9999.4), "9999"}, {some(61234), "61.2k"}, {some(1.46e6), "1.46M"}, {opt{}, "n/a"}} {
		if got := fine(tt.o); got != tt.want {
			t.Errorf("fine(%v) = %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestStaticFigs(t *testing.T) {
	// 8000 responses of 1 MiB in 4 s with 2 s of server CPU and 3 s of wrk's;
	// a row without a CPU figure has a rate but no per-core figure.
	rows := table{
		strings.Split("p\t1\t1m.bin\t2000\t1\t2\t0\t0\t0\t8000\t2\t4\t3\t1048576", "\t"),
		strings.Split("p\t2\t1m.bin\t2000\t1\t2\t0\t0\t0\t8000\t-\t4\t3\t1048576", "\t"),
	}
	f := staticFigs(rows, true)
	mb := 8000 * 1048576 / 4 / 1e6
	if !slices.Equal(f.rate, []float64{mb, mb}) || !slices.Equal(f.perCore, []float64{2 * mb}) || !slices.Equal(f.wrkCPU, []float64{75, 75}) {
		t.Errorf("large: got %+v", f)
	}
	f = staticFigs(rows, false)
	if !slices.Equal(f.rate, []float64{2000, 2000}) || !slices.Equal(f.perCore, []float64{4000}) {
		t.Errorf("small: got %+v", f)
	}
}

func TestStaticTarget(t *testing.T) {
	figs := func(rate, perCore, wrk float64) staticFigures {
		return staticFigures{rate: []float64{rate}, perCore: []float64{perCore}, wrkCPU: []float64{wrk}}
	}
	nginx := figs(100, 100, 70)
	tests := []struct {
		name  string
		s     staticFigures
		base  staticFigures
		large bool
		want  string
	}{
		{"small, req/s enough", figs(111, 90, 75), nginx, false, "**met** (req/s 1.11×, rps/core 0.90× nginx's, target ≥ 1.10×; " +
			"wrk at 75 % / 70 % of its core (this server / nginx): not saturated, so req/s counts)"},
		{"small, unsaturated: rps/core does not count", figs(105, 130, 80), nginx, false, "**not met** (req/s 1.05×, rps/core 1.30× nginx's, " +
			"target ≥ 1.10×; wrk at 80 % / 70 % of its core (this server / nginx): not saturated, so req/s counts)"},
		{"small, saturated: rps/core counts", figs(105, 130, 95), nginx, false, "**met** (req/s 1.05×, rps/core 1.30× nginx's, " +
			"target ≥ 1.10×; wrk at 95 % / 70 % of its core (this server / nginx): saturated, so rps/core counts too)"},
		{"small, saturated on nginx's runs, neither enough", figs(105, 105, 60), figs(100, 100, 99), false, "**not met** (req/s 1.05×, " +
			"rps/core 1.05× nginx's, target ≥ 1.10×; wrk at 60 % / 99 % of its core (this server / nginx): saturated, so rps/core counts too)"},
		{"large, equal", figs(2800, 3000, 99), figs(2800, 4000, 80), true,
			"**met** (MB/s 1.00× nginx's, target ≥ 1.00×; per core 0.75×; wrk at 99 % / 80 % of its core (this server / nginx))"},
		{"large, short: per core does not count", figs(2000, 4000, 99), figs(2800, 3000, 80), true,
			"**not met** (MB/s 0.71× nginx's, target ≥ 1.00×; per core 1.33×; wrk at 99 % / 80 % of its core (this server / nginx))"},
		{"no nginx runs", figs(1, 1, 1), staticFigures{}, false, "n/a (no figures)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := staticTarget(tt.s, tt.base, tt.large); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAdapterMemoryRow(t *testing.T) {
	c := &reportConfig{inflight: 1000, labels: map[string]string{"nethttp-mux": "net/http"}}
	tests := []struct {
		name string
		row  string
		want string
	}{
		{"per request of the row's count", "nethttp-mux\t8192\t18432\t2000\tok=2000 failed=0",
			"| net/http | 8.0 MiB | 18.0 MiB | 5.12 | ok=2000 failed=0 |"},
		{"no count: the flag's", "x\t1024\t3072\t\tok=1000 failed=0",
			"| x | 1.0 MiB | 3.0 MiB | 2.05 | ok=1000 failed=0 |"},
		{"RSS went down", "x\t4096\t3072\t512\tok=? failed=?",
			"| x | 4.0 MiB | 3.0 MiB | -2.00 | ok=? failed=? |"},
		{"short row", "x\t1024", "| x | 1.0 MiB | 0.0 MiB | -1.02 |  |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := adapterMemoryRow(c, strings.Split(tt.row, "\t")); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
