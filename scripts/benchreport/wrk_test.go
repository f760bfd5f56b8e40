package main

import (
	"bytes"
	"strings"
	"testing"
)

const wrkClean = `Running 1s test @ http://127.0.0.1:20001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   545.46us  173.48us   6.26ms   93.17%
    Req/Sec   115.60k     4.05k  119.84k    80.00%
  Latency Distribution
     50%  515.00us
     75%  567.00us
     90%  641.00us
     99%    1.21ms
  115006 requests in 1.00s, 14.15MB read
Requests/sec: 114963.98
Transfer/sec:     14.15MB
`

const wrkErrors = `Running 2s test @ http://127.0.0.1:20002/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.50ms   80.10ms   1.99s    98.00%
    Req/Sec     5.12k   300.00     5.60k    70.00%
  Latency Distribution
     50%    3.10ms
     75%    4.00ms
     90%    6.00ms
     99%    1.50s
  10234 requests in 2.00s, 1.23MB read
  Socket errors: connect 0, read 3, write 1, timeout 12
  Non-2xx or 3xx responses: 7
Requests/sec:   5116.60
Transfer/sec:    629.00KB
`

// wrk with scripts/pipeline.lua: the corrected histogram can say 0.
const wrkPipelined = `Running 1s test @ http://127.0.0.1:20003/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.00ms    0.50ms  10.00ms   90.00%
    Req/Sec     1.20M    50.00k    1.30M    80.00%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  1200000 requests in 1.00s, 150.00MB read
Requests/sec: 1199999.50
Transfer/sec:    150.00MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wrkResult
		wantErr string
	}{
		{name: "clean run, us and ms", in: wrkClean,
			want: wrkResult{RPS: 114963.98, Requests: 115006, Seconds: 1, P50: some(515), P99: some(1210)}},
		{name: "non-2xx and socket errors, ms and s", in: wrkErrors,
			want: wrkResult{RPS: 5116.60, Requests: 10234, Seconds: 2, P50: some(3100), P99: some(1.5e6), Errors: 7 + 3 + 1 + 12}},
		{name: "pipelined, zero latencies", in: wrkPipelined,
			want: wrkResult{RPS: 1199999.50, Requests: 1200000, Seconds: 1, P50: some(0), P99: some(0)}},
		{name: "no latency distribution", in: "  100 requests in 1.00s, 1.00KB read\nRequests/sec: 99.5\n",
			want: wrkResult{RPS: 99.5, Requests: 100, Seconds: 1}},
		{name: "large responses: a run past its duration", in: "  8080 requests in 4.04s, 7.89GB read\nRequests/sec: 2000.00\n",
			want: wrkResult{RPS: 2000, Requests: 8080, Seconds: 4.04}},
		{name: "no elapsed time", in: "  100 requests in\nRequests/sec: 100\n", want: wrkResult{RPS: 100, Requests: 100}},
		{name: "elapsed time without a unit", in: "  100 requests in 4.00, 1.00KB read\nRequests/sec: 100\n",
			wantErr: "no unit"},
		{name: "no Requests/sec", in: "  100 requests in 1.00s, 1.00KB read\n",
			wantErr: "no Requests/sec"},
		{name: "wrk's own error", in: "unable to connect to 127.0.0.1:1 Connection refused\n",
			wantErr: "no Requests/sec"},
		{name: "latency without a unit", in: "     50%  12.00\n  100 requests in 1.00s\nRequests/sec: 100\n",
			wantErr: "no unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWrkMicros(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"87.00us", 87},
		{"0.00us", 0},
		{"1.21ms", 1210},
		{"2.00s", 2e6},
		{"1.50m", 90e6},
		{"1.00h", 3600e6},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := wrkMicros(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := got - tt.want; diff > 1e-6 || diff < -1e-6 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "12", "abcus", "1.2ks"} {
		t.Run("bad "+bad, func(t *testing.T) {
			if got, err := wrkMicros(bad); err == nil {
				t.Errorf("got %v and no error, want an error", got)
			}
		})
	}
}

func TestCmdWrk(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"clean", wrkClean, "114964 115006 515 1210 0 1\n"},
		{"errors", wrkErrors, "5117 10234 3100 1500000 23 2\n"},
		{"no latency", "  100 requests in 4.04s, 1.00KB read\nRequests/sec: 24.7\n", "25 100 - - 0 4.04\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run("wrk", nil, strings.NewReader(tt.in), &out); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCmdKV(t *testing.T) {
	const line = "msgs=1234567 secs=4.00 msgs_per_sec=308641 p50_us=180 p99_us=420 max_us=9000 conns=64 depth=1 size=128\n"
	tests := []struct {
		name    string
		keys    []string
		in      string
		want    string
		wantErr string
	}{
		{name: "echoload line", keys: []string{"msgs_per_sec", "p50_us", "p99_us", "msgs"}, in: line,
			want: "308641 180 420 1234567\n"},
		{name: "one key", keys: []string{"depth"}, in: line, want: "1\n"},
		{name: "missing key", keys: []string{"msgs", "nope"}, in: line, wantErr: "no nope="},
		{name: "empty value", keys: []string{"msgs"}, in: "msgs=\n", wantErr: "no msgs="},
		{name: "not key=value", keys: []string{"msgs"}, in: "echoload: dial 0: refused\n", wantErr: "not key=value"},
		{name: "no keys", in: line, wantErr: "which keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run("kv", tt.keys, strings.NewReader(tt.in), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
