package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// statLine makes a /proc/PID/stat line with the given comm, ppid, utime and stime.
func statLine(pid int, comm string, ppid int, utime, stime int64) string {
	return strconv.Itoa(pid) + " (" + comm + ") S " + strconv.Itoa(ppid) +
		" 100 100 0 -1 4194560 500 0 0 0 " + strconv.FormatInt(utime, 10) + " " + strconv.FormatInt(stime, 10) +
		" 0 0 20 0 3 0 12345 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
}

func fakeProc(t *testing.T, procs []procStat, rss map[int]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range procs {
		d := filepath.Join(dir, strconv.Itoa(p.PID))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(statLine(p.PID, "proc "+strconv.Itoa(p.PID), p.PPID, p.UTime, p.STime)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		status := "Name:\tx\nState:\tS (sleeping)\n"
		if kb, ok := rss[p.PID]; ok {
			status += "VmRSS:\t" + kb + " kB\n"
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(status+"Threads:\t1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []string{"self", "stat", "sys"} { // not processes
		if err := os.WriteFile(filepath.Join(dir, other), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A master (100) with two workers (101, 102), one of which has a child
// (103); an unrelated process (200) and its child (201).
var fakeProcs = []procStat{
	{PID: 1, PPID: 0, UTime: 1000, STime: 1000},
	{PID: 100, PPID: 1, UTime: 10, STime: 5},
	{PID: 101, PPID: 100, UTime: 300, STime: 200},
	{PID: 102, PPID: 100, UTime: 250, STime: 240},
	{PID: 103, PPID: 101, UTime: 1, STime: 2},
	{PID: 200, PPID: 1, UTime: 77, STime: 77},
	{PID: 201, PPID: 200, UTime: 7, STime: 7},
}

func TestTree(t *testing.T) {
	procs, err := readProcs(fakeProc(t, fakeProcs, nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		root      int
		want      []int
		wantTicks int64
	}{
		{"master and workers", 100, []int{100, 101, 102, 103}, 15 + 500 + 490 + 3},
		{"one worker and its child", 101, []int{101, 103}, 503},
		{"a leaf", 201, []int{201}, 14},
		{"gone", 999, nil, 0},
		{"everything under init", 1, []int{1, 100, 101, 102, 103, 200, 201}, 2000 + 1008 + 154 + 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tree(procs, tt.root); !slices.Equal(got, tt.want) {
				t.Errorf("tree: got %v, want %v", got, tt.want)
			}
			if got := treeTicks(procs, tt.root); got != tt.wantTicks {
				t.Errorf("ticks: got %d, want %d", got, tt.wantTicks)
			}
		})
	}
}

func TestTreeRSS(t *testing.T) {
	// 102 is a zombie (no VmRSS line).
	dir := fakeProc(t, fakeProcs, map[int]string{100: "9000", 101: "4096", 103: "100", 200: "55555"})
	tests := []struct {
		name string
		root int
		want int64
	}{
		{"master, workers, a zombie", 100, 9000 + 4096 + 100},
		{"other tree", 200, 55555},
		{"gone", 999, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := treeRSS(dir, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %d KiB, want %d", got, tt.want)
			}
		})
	}
}

func TestParseProcStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cpuTicks
		wantErr bool
	}{
		{name: "10 figures",
			in: "cpu  100 2 30 4000 50 6 7 8 0 0\ncpu0 50 1 15 2000 25 3 3 4 0 0\nintr 1 2 3\n",
			// user + nice + system + irq + softirq
			want: cpuTicks{busy: 100 + 2 + 30 + 6 + 7, steal: 8}},
		{name: "cpu line not first", in: "intr 5\ncpu  1 1 1 1 1 1 1 1\n", want: cpuTicks{busy: 5, steal: 1}},
		{name: "too few figures", in: "cpu  1 2 3 4\n", wantErr: true},
		{name: "no cpu line", in: "cpu0 1 2 3 4 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatCPU(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTimes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{name: "bash", in: "0m0.012s 0m0.004s\n1m2.345s 0m0.678s\n", want: 63.023},
		{name: "no children yet", in: "0m0.012s 0m0.004s\n0m0.000s 0m0.000s\n", want: 0},
		{name: "decimal comma", in: "0m0,012s 0m0,004s\n0m1,500s 0m0,250s\n", want: 1.75},
		{name: "one line", in: "0m0.012s 0m0.004s\n", wantErr: true},
		{name: "not a duration", in: "a b\nc d\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTimes(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCPUSnapRoundTrip(t *testing.T) {
	s := cpuSnap{Wall: 1700000000.25, Busy: 123456, Steal: 78, Tree: 4321, Child: 12.34}
	got, err := parseCPUSnap(s.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Errorf("got %+v, want %+v", got, s)
	}
	if _, err := parseCPUSnap("wall=1 busy=x steal=0 tree=0 child=0"); err == nil {
		t.Error("got no error for busy=x, want one")
	}
}

func TestCPUDelta(t *testing.T) {
	begin := cpuSnap{Wall: 1000, Busy: 10000, Steal: 50, Tree: 2000, Child: 30}
	tests := []struct {
		name    string
		end     cpuSnap
		hz      int
		ncpu    int
		want    cpuUse
		wantErr bool
	}{
		// 4 s on 2 CPUs at 100 Hz: 800 ticks, 8 per %. The server took 500,
		// the load generator 2.5 s (250), 50 were someone else's; 16 stolen.
		{name: "2 CPUs", end: cpuSnap{Wall: 1004, Busy: 10800, Steal: 66, Tree: 2500, Child: 32.5}, hz: 100, ncpu: 2,
			want: cpuUse{OtherPct: 50.0 / 8, StealPct: 2, ServerCPU: 5, ClientCPU: 2.5}},
		{name: "other below zero is 0", end: cpuSnap{Wall: 1001, Busy: 10100, Steal: 50, Tree: 2090, Child: 30.2}, hz: 100, ncpu: 1,
			want: cpuUse{OtherPct: 0, StealPct: 0, ServerCPU: 0.9, ClientCPU: 0.2}},
		{name: "a process of the tree ended", end: cpuSnap{Wall: 1001, Busy: 10100, Steal: 50, Tree: 1500, Child: 30}, hz: 100, ncpu: 1,
			want: cpuUse{OtherPct: 100, StealPct: 0, ServerCPU: 0}},
		{name: "no time between", end: begin, hz: 100, ncpu: 1, wantErr: true},
		{name: "no hz", end: cpuSnap{Wall: 1001}, hz: 0, ncpu: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cpuDelta(begin, tt.end, tt.hz, tt.ncpu)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if math.Abs(got.OtherPct-tt.want.OtherPct) > 1e-9 || math.Abs(got.StealPct-tt.want.StealPct) > 1e-9 ||
				math.Abs(got.ServerCPU-tt.want.ServerCPU) > 1e-9 || math.Abs(got.ClientCPU-tt.want.ClientCPU) > 1e-9 {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The line scripts/bench reads: OTHER_PCT STEAL_PCT SERVER_CPU CLIENT_CPU.
func TestCmdCPUDelta(t *testing.T) {
	var out strings.Builder
	err := run("cpu-delta", []string{"-hz", "100", "-ncpu", "2",
		"wall=1000 busy=10000 steal=50 tree=2000 child=30.1",
		"wall=1004 busy=10800 steal=66 tree=2500 child=32.6"}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "6 2 5 2.500\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The snapshot subcommand on this machine's /proc: this test process's own
// tree has at least the CPU it has used.
func TestCmdCPUSnap(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	times := filepath.Join(t.TempDir(), "times")
	if err := os.WriteFile(times, []byte("0m0.010s 0m0.000s\n0m1.000s 0m0.500s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run("cpu-snap", []string{strconv.Itoa(os.Getpid()), times}, nil, &out); err != nil {
		t.Fatal(err)
	}
	s, err := parseCPUSnap(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if s.Child != 1.5 || s.Busy <= 0 || s.Wall <= 0 || s.Tree < 0 {
		t.Errorf("got %+v, want child 1.5 and positive busy and wall", s)
	}
}
