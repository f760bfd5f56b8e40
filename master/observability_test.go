package master_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testenv"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/master"
	"golang.org/x/sys/unix"
)

// requireTool returns the path of an external tool. Without it the test
// skips, saying why, unless PREFORK_REQUIRE_TOOLS=1 (CI installs the tools),
// where a missing tool fails the test.
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	testenv.Skip(t, "%s not found: install the Debian package %s to run this test", name, pkg)
	return ""
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample returns the value of the series with exactly these labels.
func sample(t testing.TB, exposition, name string, labels string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s%s: %v", name, labels, err)
	}
	return v, true
}

// TestMetricsScrape: one scrape returns every worker's series labelled by
// slot, the master's series, and request counts equal to the requests made;
// promtool accepts it.
func TestMetricsScrape(t *testing.T) {
	s := startServer(t, 3)
	const requests = 90
	for i := 0; i < requests; i++ {
		if err := get(s.addr); err != nil {
			t.Fatal(err)
		}
	}
	code, body := httpGet(t, "http://"+s.metricsAddr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: status %d", code)
	}
	total := 0.0
	for slot := 0; slot < 3; slot++ {
		w := fmt.Sprintf(`{worker="%d"}`, slot)
		for _, name := range []string{"prefork_connections_accepted_total", "prefork_connections_active",
			"prefork_read_bytes_total", "prefork_written_bytes_total", "prefork_accept_empty_wakeups_total",
			"process_resident_memory_bytes", "go_goroutines", "prefork_worker_scrape_success"} {
			if _, ok := sample(t, body, name, w); !ok {
				t.Errorf("no %s%s in the scrape", name, w)
			}
		}
		n, ok := sample(t, body, "prefork_requests_total", fmt.Sprintf(`{proto="http",worker="%d"}`, slot))
		if !ok {
			t.Errorf("no prefork_requests_total for slot %d", slot)
		}
		total += n
		if v, _ := sample(t, body, "prefork_worker_scrape_success", w); v != 1 {
			t.Errorf("slot %d scrape success: got %v, want 1", slot, v)
		}
		// A worker runs one loop goroutine on one P unless GOMAXPROCS says otherwise.
		if v, ok := sample(t, body, "go_sched_gomaxprocs_threads", w); os.Getenv("GOMAXPROCS") == "" && (!ok || v != 1) {
			t.Errorf("slot %d GOMAXPROCS: got %v (present %v), want 1", slot, v, ok)
		}
		for _, series := range []string{"prefork_loop_events_per_wait_count", "prefork_loop_turn_seconds_count"} {
			if _, ok := sample(t, body, series, w); !ok {
				t.Errorf("no %s%s", series, w)
			}
		}
	}
	if total != requests {
		t.Errorf("prefork_requests_total summed over workers: got %v, want %d", total, requests)
	}
	// The http protocol's own series, per worker, by status class.
	ok2xx := 0.0
	for slot := 0; slot < 3; slot++ {
		v, ok := sample(t, body, "prefork_http_requests_total", fmt.Sprintf(`{code="2xx",worker="%d"}`, slot))
		if !ok {
			t.Errorf("no prefork_http_requests_total{code=\"2xx\"} for slot %d", slot)
		}
		ok2xx += v
		for _, series := range []string{"prefork_http_inflight_requests", "prefork_http_request_duration_seconds_count"} {
			if _, ok := sample(t, body, series, fmt.Sprintf(`{worker="%d"}`, slot)); !ok {
				t.Errorf("no %s for slot %d", series, slot)
			}
		}
	}
	if ok2xx != requests {
		t.Errorf("prefork_http_requests_total{code=\"2xx\"} summed: got %v, want %d", ok2xx, requests)
	}
	for name, want := range map[string]float64{"prefork_workers_desired": 3, "prefork_workers_running": 3, "prefork_reloads_total": 0} {
		if v, ok := sample(t, body, name, ""); !ok || v != want {
			t.Errorf("%s: got %v (present %v), want %v", name, v, ok, want)
		}
	}
	if _, ok := sample(t, body, "process_resident_memory_bytes", ""); !ok {
		t.Error("no unlabelled process_resident_memory_bytes (the master's own)")
	}
	if !strings.Contains(body, "prefork_build_info{") {
		t.Error("no prefork_build_info")
	}
	if strings.Contains(body, fmt.Sprintf(`worker="%d"`, s.pid)) {
		t.Error("a pid is used as a worker label value")
	}

	promtool := requireTool(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsRestartAndMissing: a killed worker's slot counts a restart and
// its counters start again from zero; a wedged worker is reported missing
// without stalling the scrape.
func TestMetricsRestartAndMissing(t *testing.T) {
	s := startServer(t, 2, "--proto", "hang", "--worker-timeout", "30s")
	for i := 0; i < 10; i++ {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Wait until the workers have accepted all ten: a connection still in
	// slot 0's queue when its worker dies is (rightly) accepted by the
	// replacement, and would count there.
	testkit.WaitFor(t, "the ten connections to be accepted", 10*time.Second, func() bool {
		_, body := httpGet(t, "http://"+s.metricsAddr+"/metrics")
		a0, _ := sample(t, body, "prefork_connections_accepted_total", `{worker="0"}`)
		a1, _ := sample(t, body, "prefork_connections_accepted_total", `{worker="1"}`)
		return a0+a1 == 10
	})
	victim := s.readyWorkers()[0]
	_ = unix.Kill(victim, unix.SIGKILL)
	testkit.WaitFor(t, "slot 0 replaced", 10*time.Second, func() bool {
		pid, ok := s.readyWorkers()[0]
		return ok && pid != victim
	})
	_, body := httpGet(t, "http://"+s.metricsAddr+"/metrics")
	if v, _ := sample(t, body, "prefork_worker_restarts_total", `{reason="signaled"}`); v != 1 {
		t.Errorf("restarts{signaled}: got %v, want 1", v)
	}
	if v, ok := sample(t, body, "prefork_connections_accepted_total", `{worker="0"}`); !ok || v != 0 {
		t.Errorf("slot 0 accepted after its restart: got %v, want 0 (a new worker's counters start at zero)", v)
	}

	// Wedge a worker: its loop stops, so it cannot answer the scrape.
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hang")
	testkit.WaitFor(t, "a worker to wedge", 10*time.Second, func() bool {
		start := time.Now()
		_, body = httpGet(t, "http://"+s.metricsAddr+"/metrics")
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("scrape took %v with a wedged worker: want it bounded by the 1s gather timeout", el)
		}
		v0, _ := sample(t, body, "prefork_worker_scrape_success", `{worker="0"}`)
		v1, _ := sample(t, body, "prefork_worker_scrape_success", `{worker="1"}`)
		return v0+v1 == 1
	})
}

func TestHealthAndReady(t *testing.T) {
	s := startServer(t, 2)
	if code, body := httpGet(t, "http://"+s.metricsAddr+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+s.metricsAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}
}

// notifySocket is a fake systemd notify socket.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t testing.TB) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifySocket{path: path, conn: c, msgs: make(chan string, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return ns
}

// next returns the next message containing want, skipping others.
func (ns *notifySocket) next(t testing.TB, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-ns.msgs:
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no notify message with %q", want)
		}
	}
}

// TestSystemdNotify: READY=1 only when the port answers, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around a HUP, STOPPING=1 on TERM, WATCHDOG=1
// while workers heartbeat; workers do not see NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	ns := newNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", ns.path)
	t.Setenv("WATCHDOG_USEC", "400000")
	s := startServer(t, 0, "--workers", "2")
	m := ns.next(t, "READY=1")
	if !strings.Contains(m, "STATUS=") {
		t.Errorf("READY message without STATUS: %q", m)
	}
	if err := get(s.addr); err != nil {
		t.Fatalf("port does not answer after READY=1: %v", err)
	}
	ns.next(t, "WATCHDOG=1")
	for _, pid := range s.workerPIDs() {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, v := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC="} {
			if bytes.Contains(env, []byte(v)) {
				t.Errorf("worker %d environment has %s", pid, v)
			}
		}
	}
	s.signal(unix.SIGHUP)
	m = ns.next(t, "RELOADING=1")
	if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(m) {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	ns.next(t, "READY=1")
	s.signal(unix.SIGTERM)
	ns.next(t, "STOPPING=1")
	if code := s.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestSocketActivation: under systemd-socket-activate the master adopts the
// passed listener (no --listen) and serves through it: in the default mode
// (which falls back to shared, the socket having no SO_REUSEPORT) and in
// handoff mode (the master's acceptor accepts on the adopted socket).
func TestSocketActivation(t *testing.T) {
	tool := requireTool(t, "systemd-socket-activate", "systemd")
	for _, tc := range []struct {
		name     string
		args     []string
		fallback bool // the master must say it falls back to shared mode
	}{
		{name: "default mode falls back to shared", fallback: true},
		{name: "handoff", args: []string{"--mode", "handoff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			args := append([]string{"-l", addr, bin, "serve", "--workers", "2", "--metrics-listen", "", "--log-format", "json"}, tc.args...)
			logs := startTool(t, exec.Command(tool, args...))
			// systemd-socket-activate listens at once and starts the server on the
			// first connection, which waits in the adopted socket's queue.
			testkit.WaitFor(t, "systemd-socket-activate to listen", 10*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			for i := 0; i < 20; i++ {
				if err := get(addr); err != nil {
					t.Fatalf("request %d through the activated socket: %v", i, err)
				}
			}
			out := logs.String()
			if !strings.Contains(out, "socket activation: adopting listeners") {
				t.Errorf("the master did not say it adopted the socket")
			}
			if got := strings.Contains(out, "using shared mode"); got != tc.fallback {
				t.Errorf("said it falls back to shared mode: %v, want %v", got, tc.fallback)
			}
			if len(tc.args) > 0 && !strings.Contains(out, `"mode":"handoff"`) {
				t.Errorf("the master did not start in handoff mode")
			}
		})
	}
}

// startTool starts an external program with its output captured, and stops
// it when the test ends (SIGTERM, SIGKILL after 10 s), printing its output if
// the test failed.
func startTool(t testing.TB, cmd *exec.Cmd) *lockedBuffer {
	t.Helper()
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Path, logs.String())
		}
	})
	return logs
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSystemdUnitsVerify: the shipped units pass systemd-analyze verify.
func TestSystemdUnitsVerify(t *testing.T) {
	tool := requireTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	svc, err := os.ReadFile("../systemd/prefork.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's binary exists: point it at the test binary.
	svc = bytes.ReplaceAll(svc, []byte("/usr/local/bin/prefork"), []byte(bin))
	if err := os.WriteFile(filepath.Join(dir, "prefork.service"), svc, 0o644); err != nil {
		t.Fatal(err)
	}
	sock, err := os.ReadFile("../systemd/prefork.socket")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prefork.socket"), sock, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=no",
		filepath.Join(dir, "prefork.socket"), filepath.Join(dir, "prefork.service")).CombinedOutput()
	// verify exits 0 on some warnings (an unknown Type= is only "ignored"):
	// any output is a finding.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestPrometheusServerScrape: a real Prometheus server scraping the master
// sees every worker's series as one target.
func TestPrometheusServerScrape(t *testing.T) {
	promBin := requireTool(t, "prometheus", "prometheus")
	s := startServer(t, 3)
	for i := 0; i < 30; i++ {
		if err := get(s.addr); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: prefork\n    static_configs:\n      - targets: ['%s']\n", s.metricsAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	web := freePort(t)
	cmd := exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	startTool(t, cmd)
	query := "http://" + web + "/api/v1/query?query=" + "sum+by+(worker)(prefork_requests_total)"
	var body string
	testkit.WaitFor(t, "Prometheus to have scraped every worker", 60*time.Second, func() bool {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(query)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Contains(body, `"worker":"0"`) && strings.Contains(body, `"worker":"1"`) && strings.Contains(body, `"worker":"2"`)
	})
	// The three slots' request counts add up to the requests made.
	total := 0.0
	for _, m := range regexp.MustCompile(`"value":\[[0-9.]+,"([0-9.]+)"\]`).FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		total += v
	}
	if total != 30 {
		t.Errorf("requests summed over workers in Prometheus: got %v, want 30 (%s)", total, body)
	}
	_, up := httpGet(t, "http://"+web+"/api/v1/query?query=up")
	if !strings.Contains(up, `"value":[`) || !strings.Contains(up, `,"1"]`) {
		t.Errorf("the master target is not up: %s", up)
	}
}

// TestMetricsAddressTaken: a second prefork on the machine, started with the
// default metrics address, serves its metrics on a free port and says so; an
// address given explicitly that cannot be bound fails the start.
func TestMetricsAddressTaken(t *testing.T) {
	// Hold the default address as a first instance would. If something else
	// holds it already, the second instance is in the same position.
	if ln, err := net.Listen("tcp", master.DefaultMetricsListen); err == nil {
		defer ln.Close()
	}
	s := startServer(t, 1, defaultMetrics)
	if s.metricsAddr == "" || s.metricsAddr == master.DefaultMetricsListen {
		t.Fatalf("metrics address: got %q, want a free port instead of the taken %s", s.metricsAddr, master.DefaultMetricsListen)
	}
	if len(s.logsWith("metrics address in use (another prefork?): serving metrics on a free port instead; choose one with --metrics-listen")) != 1 {
		t.Error("no warning saying the metrics moved")
	}
	if code, body := httpGet(t, "http://"+s.metricsAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz on the fallback address: got %d %q", code, body)
	}

	taken := s.metricsAddr
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--workers", "1", "--metrics-listen", taken)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "--metrics-listen") {
		t.Errorf("explicit taken address %s: got %v, %q; want exit 1 naming --metrics-listen", taken, err, out)
	}
}
