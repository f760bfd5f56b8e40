package master_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/proc"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/master"
)

// bin is the prefork binary under test: internal/testbin, which is the real
// CLI plus the test protocols "hang" and "crash".
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prefork-master-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Workers started with --user must be able to execute the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "prefork")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/prefork/prefork/internal/testbin")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test binary: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `prefork serve`.
type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	pid     int
	addr    string
	pidfile string
	admin   string
	// metricsAddr is where /metrics is served; set before addr is sent.
	metricsAddr string
	exited      chan struct{}
	err         error // Wait's result, valid after exited closes

	mu   sync.Mutex
	logs []map[string]any
}

// defaultMetrics, as an argument of startServer, leaves --metrics-listen
// unset (the default address) instead of 127.0.0.1:0.
const defaultMetrics = "<default --metrics-listen>"

// startServer runs `prefork serve` with JSON logs, 127.0.0.1:0, a pidfile and
// extra args, and waits until every worker is ready.
func startServer(t testing.TB, workers int, args ...string) *server {
	t.Helper()
	return startServerBin(t, bin, workers, args...)
}

// startServerBin is startServer with another binary than the test one.
func startServerBin(t testing.TB, path string, workers int, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, pidfile: filepath.Join(dir, "prefork.pid"), exited: make(chan struct{})}
	s.admin = s.pidfile + ".sock"
	full := []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug",
		"--pidfile", s.pidfile, "--workers", strconv.Itoa(workers)}
	if i := slices.Index(args, defaultMetrics); i >= 0 {
		args = slices.Delete(slices.Clone(args), i, i+1)
	} else {
		full = append(full, "--metrics-listen", "127.0.0.1:0")
	}
	full = append(full, args...)
	s.cmd = exec.Command(path, full...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = s.cmd.Process.Pid
	addrc := make(chan string, 1)
	go s.readLogs(stderr, addrc)
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = unix.Kill(s.pid, unix.SIGKILL)
			<-s.exited
		}
		// No worker may outlive the master.
		testkit.WaitFor(t, "workers of the killed master to exit", 5*time.Second, func() bool { return len(s.workerPIDsAny()) == 0 })
		if t.Failed() {
			s.dumpLogs()
		}
	})
	select {
	case s.addr = <-addrc:
	case <-s.exited:
		s.dumpLogs()
		t.Fatalf("server exited at start: %v", s.err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not log its address")
	}
	if workers > 0 {
		s.waitReady(workers)
	}
	return s
}

func (s *server) readLogs(r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sent := false
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = map[string]any{"msg": "RAW", "raw": sc.Text()}
		}
		s.mu.Lock()
		s.logs = append(s.logs, m)
		s.mu.Unlock()
		if !sent && m["msg"] == "master started" {
			s.metricsAddr, _ = m["metrics"].(string)
			if addrs, ok := m["addrs"].([]any); ok && len(addrs) > 0 {
				addrc <- addrs[0].(string)
				sent = true
			}
		}
	}
}

func (s *server) dumpLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.logs {
		b, _ := json.Marshal(m)
		s.t.Log(string(b))
	}
}

// logsWith returns the log records whose msg is msg.
func (s *server) logsWith(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, m := range s.logs {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (s *server) status() master.Status {
	s.t.Helper()
	st, err := master.QueryStatus(s.admin)
	if err != nil {
		s.t.Fatalf("status: %v", err)
	}
	return st
}

// readyWorkers returns slot → pid of the ready workers (the newest per slot).
func (s *server) readyWorkers() map[int]int {
	out := map[int]int{}
	for _, w := range s.status().Workers {
		if w.State == "ready" {
			out[w.Slot] = w.PID
		}
	}
	return out
}

// waitReady waits until n slots have a ready worker and no other worker runs.
func (s *server) waitReady(n int) map[int]int {
	s.t.Helper()
	var ready map[int]int
	testkit.WaitFor(s.t, fmt.Sprintf("%d ready workers and nothing else", n), 30*time.Second, func() bool {
		st := s.status()
		ready = map[int]int{}
		for _, w := range st.Workers {
			if w.State == "ready" {
				ready[w.Slot] = w.PID
			}
		}
		return len(ready) == n && len(st.Workers) == n && len(s.workerPIDs()) == n
	})
	return ready
}

// reload sends HUP and waits until the master has counted reload number i
// and every one of the n slots has a ready worker that is not the one it
// had before.
func (s *server) reload(i, n int) {
	s.t.Helper()
	before := s.readyWorkers()
	s.signal(unix.SIGHUP)
	testkit.WaitFor(s.t, fmt.Sprintf("reload %d", i), 30*time.Second, func() bool {
		st := s.status()
		if st.Reloads != i || len(st.Workers) != n || len(s.workerPIDs()) != n {
			return false
		}
		for _, w := range st.Workers {
			if w.State != "ready" || w.PID == before[w.Slot] {
				return false
			}
		}
		return true
	})
}

func (s *server) signal(sig unix.Signal) {
	s.t.Helper()
	if err := unix.Kill(s.pid, sig); err != nil {
		s.t.Fatalf("kill %d %v: %v", s.pid, sig, err)
	}
}

// waitExit waits for the master to exit and returns its exit code.
func (s *server) waitExit(within time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(within):
		s.t.Fatalf("master did not exit within %v", within)
	}
	if s.err == nil {
		return 0
	}
	if ee, ok := s.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	s.t.Fatalf("wait: %v", s.err)
	return -1
}

// workerPIDs lists the master's live children (zombies excluded).
func (s *server) workerPIDs() []int { return childrenOf(s.pid, false) }

// workerPIDsAny lists processes whose parent was the master or that are
// orphaned workers (re-parented): any process running our binary with the
// worker role. Used to prove no worker survives.
func (s *server) workerPIDsAny() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if strings.TrimSuffix(exe, " (deleted)") != bin {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[1] == "worker" && procState(pid) != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

func procState(pid int) string {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return ""
	}
	return st.State
}

// childrenOf lists the children of pid from /proc/*/stat.
func childrenOf(pid int, zombies bool) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := proc.ReadStat(cpid)
		if err != nil {
			continue
		}
		if st.PPID == pid && (zombies || st.State != "Z") {
			out = append(out, cpid)
		}
	}
	return out
}

// get makes one HTTP request on a new connection and checks the 200.
func get(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(b, []byte("Hello, World!")) {
		return fmt.Errorf("bad response %q", b)
	}
	return nil
}

// load makes requests on new connections from several goroutines until
// stopped, counting successes and failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t testing.TB, addr string, clients int) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := get(addr); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	t.Cleanup(l.finish)
	return l
}

// waitRequests waits until the load has made n more successful requests.
func (l *load) waitRequests(t testing.TB, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	testkit.WaitFor(t, fmt.Sprintf("%d more requests", n), 30*time.Second, func() bool { return l.ok.Load() >= target })
}

func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check stops the load and fails the test on any failed request.
func (l *load) check(t testing.TB) {
	t.Helper()
	l.finish()
	t.Logf("load: %d requests ok, %d failed", l.ok.Load(), l.failed.Load())
	if l.failed.Load() > 0 {
		t.Errorf("failed requests: got %d, want 0; first errors: %v", l.failed.Load(), l.errs)
	}
	if l.ok.Load() == 0 {
		t.Error("the load made no successful request")
	}
}
