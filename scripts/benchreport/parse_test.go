package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const straceSyscalls = `syscall              calls    errors
---------------- --------- ---------
epoll_pwait          40123
write                40000
read                 39990        64
futex                  120        10
---------------- --------- ---------
total               120233        74
`

const straceAccepts = `syscall              calls    errors
---------------- --------- ---------
epoll_pwait            600
accept4                512        12
accept                   3         1
close                  500
---------------- --------- ---------
total                 1615        13
`

func TestParseStraceSummary(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantRows  []straceRow
		wantTotal straceRow
		wantErr   bool
	}{
		{name: "sorted by calls", in: straceSyscalls,
			wantRows:  []straceRow{{"epoll_pwait", 40123, 0}, {"write", 40000, 0}, {"read", 39990, 64}, {"futex", 120, 10}},
			wantTotal: straceRow{"total", 120233, 74}},
		{name: "no total line: the sum", in: "syscall calls errors\naccept4 5 1\nclose 4\n",
			wantRows: []straceRow{{"accept4", 5, 1}, {"close", 4, 0}}, wantTotal: straceRow{"total", 9, 1}},
		{name: "nothing traced", in: "syscall calls errors\n----- ----- -----\n----- ----- -----\ntotal 0\n",
			wantTotal: straceRow{"total", 0, 0}},
		{name: "empty file (strace killed early)", in: "", wantTotal: straceRow{"total", 0, 0}},
		{name: "a % time table", in: "% time     seconds  usecs/call     calls    errors syscall\n 45.00 0.001 1 1000 write\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, total, err := parseStraceSummary(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !slices.Equal(rows, tt.wantRows) || total != tt.wantTotal {
				t.Errorf("got %v total %v, want %v total %v", rows, total, tt.wantRows, tt.wantTotal)
			}
		})
	}
}

func TestSuccessfulAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"accept4 and accept, errors left out", straceAccepts, 512 - 12 + 3 - 1},
		{"no accept", straceSyscalls, 0},
		{"nothing", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, _, err := parseStraceSummary(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := successfulAccepts(rows); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCmdSyscalls(t *testing.T) {
	file := filepath.Join(t.TempDir(), "strace.txt")
	if err := os.WriteFile(file, []byte(straceSyscalls), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run("syscalls", []string{"-server", "prefork", "-depth", "16", "-requests", "40000", file}, nil, &out); err != nil {
		t.Fatal(err)
	}
	want := "prefork\t16\t40000\t120233\tepoll_pwait\t40123\twrite\t40000\tread\t39990\tfutex\t120\n"
	if got := out.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

const metricsText = `# HELP prefork_connections_accepted_total Connections accepted.
# TYPE prefork_connections_accepted_total counter
prefork_connections_accepted_total{listener="127.0.0.1:8080",worker="0"} 510
prefork_connections_accepted_total{listener="[::1]:8080",worker="0"} 2
prefork_connections_accepted_total{listener="127.0.0.1:8080",worker="1"} 488
prefork_connections_accepted_total{worker="2",note="a \"quoted\" value, with } inside"} 1.002e3 1700000000000
prefork_connections_accepted_total_other{worker="0"} 99999
prefork_connections_accepted_total{listener="no worker label"} 7
prefork_requests_total{worker="0"} 123456
`

func TestPerWorker(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]float64
		wantErr bool
	}{
		{name: "summed per worker, other metrics and labels left out", in: metricsText,
			want: map[string]float64{"0": 512, "1": 488, "2": 1002}},
		{name: "no such series", in: "prefork_requests_total{worker=\"0\"} 5\n", want: map[string]float64{}},
		{name: "empty body", in: "", want: map[string]float64{}},
		{name: "unterminated label", in: `prefork_connections_accepted_total{worker="0} 5` + "\n", wantErr: true},
		{name: "no value", in: `prefork_connections_accepted_total{worker="0"}` + "\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := perWorker(strings.NewReader(tt.in), acceptedMetric)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAcceptedDelta(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]float64
		workers       int
		want          []int64
	}{
		{"increase per slot", map[string]float64{"0": 2, "1": 2}, map[string]float64{"0": 1002, "1": 1002}, 2, []int64{1000, 1000}},
		{"a slot without series yet", map[string]float64{}, map[string]float64{"0": 2000}, 3, []int64{2000, 0, 0}},
		{"nothing after", map[string]float64{"0": 2}, map[string]float64{}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acceptedDelta(tt.before, tt.after, tt.workers); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCmdAccepted(t *testing.T) {
	dir := t.TempDir()
	before, after, empty := filepath.Join(dir, "before"), filepath.Join(dir, "after"), filepath.Join(dir, "empty")
	for path, body := range map[string]string{
		before: "prefork_connections_accepted_total{worker=\"0\"} 1\nprefork_connections_accepted_total{worker=\"1\"} 1\n",
		after:  metricsText,
		empty:  "# no series\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"four slots", []string{"-workers", "4", before, after}, "511 487 1002 0\n"},
		{"no series after: nothing", []string{"-workers", "2", before, empty}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run("accepted", tt.args, nil, &out); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
