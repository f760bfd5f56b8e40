package master_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testkit"
)

// Handoff mode through the real binary: the master accepts and hands each
// connection's fd to a worker over its control socket. What is checked is
// read from the kernel (/proc/PID/fd, /proc/net/tcp) and from /metrics.

// serverConnInodes returns the inodes of the server-side TCP connection
// sockets of the service at addr: local port = the service's, not listening.
func serverConnInodes(t testing.TB, addr string) map[uint64]bool {
	t.Helper()
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf(":%04X", port)
	out := map[uint64]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && strings.HasSuffix(fields[1], want) && fields[3] != "0A" {
				if n, _ := strconv.ParseUint(fields[9], 10, 64); n != 0 {
					out[n] = true
				}
			}
		}
	}
	return out
}

// connOwners maps each server-side connection socket of s to the processes
// (the master and its workers) holding an fd of it.
func connOwners(t testing.TB, s *server) map[uint64][]int {
	t.Helper()
	conns := serverConnInodes(t, s.addr)
	out := map[uint64][]int{}
	for _, pid := range append([]int{s.pid}, s.workerPIDs()...) {
		seen := map[uint64]bool{}
		for _, ino := range socketInodes(t, pid) {
			if conns[ino] && !seen[ino] {
				seen[ino] = true
				out[ino] = append(out[ino], pid)
			}
		}
	}
	return out
}

// masterConnFDs counts the master's fds that are connections of the service.
func masterConnFDs(t testing.TB, s *server) int {
	t.Helper()
	conns := serverConnInodes(t, s.addr)
	n := 0
	for _, ino := range socketInodes(t, s.pid) {
		if conns[ino] {
			n++
		}
	}
	return n
}

// openKeepAlive opens n connections at once, each answered once and left
// open, and returns them.
func openKeepAlive(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			errs <- request(c)
		}()
	}
	wg.Wait()
	close(errs)
	for _, c := range conns {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	for err := range errs {
		if err != nil {
			t.Fatalf("keep-alive connection: %v", err)
		}
	}
	return conns
}

// request makes one keep-alive request on c and reads the whole response.
func request(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(b) != "Hello, World!" {
		return fmt.Errorf("got %d %q", resp.StatusCode, b)
	}
	if br.Buffered() != 0 {
		return fmt.Errorf("%d bytes after the response", br.Buffered())
	}
	return nil
}

// scrape reads /metrics on a connection of its own, closed after, so the
// master's fd table is not changed by the test's own keep-alive.
func scrape(t testing.TB, s *server) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// activeBySlot reads prefork_connections_active for slots 0..n-1.
func activeBySlot(t testing.TB, s *server, n int) []int {
	t.Helper()
	m := scrape(t, s)
	out := make([]int, n)
	for k := range out {
		v, ok := sample(t, m, "prefork_connections_active", fmt.Sprintf(`{worker="%d"}`, k))
		if !ok {
			t.Fatalf("prefork_connections_active{worker=%q} missing", strconv.Itoa(k))
		}
		out[k] = int(v)
	}
	return out
}

func spread(xs []int) (lo, hi int) {
	lo, hi = xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// TestHandoffFDIsolation: workers inherit no listener; after 60 handoffs no
// connection socket is left in the master, and each is in exactly one
// worker.
func TestHandoffFDIsolation(t *testing.T) {
	s := startServer(t, 3, "--mode", "handoff")
	openKeepAlive(t, s.addr, 60)
	listening := listeningInodes(t)
	for _, pid := range s.workerPIDs() {
		for _, ino := range socketInodes(t, pid) {
			if listening[ino] {
				t.Errorf("worker %d holds listening socket %d; in handoff mode only the master listens", pid, ino)
			}
		}
	}
	owners := connOwners(t, s)
	if len(owners) != 60 {
		t.Errorf("server-side connections: got %d, want 60", len(owners))
	}
	workers := map[int]bool{}
	for _, pid := range s.workerPIDs() {
		workers[pid] = true
	}
	for ino, pids := range owners {
		if len(pids) != 1 || !workers[pids[0]] {
			t.Errorf("connection socket %d held by %v (master %d): want exactly one worker", ino, pids, s.pid)
		}
	}
	if n := masterConnFDs(t, s); n != 0 {
		t.Errorf("connection fds in the master after the handoff: got %d, want 0", n)
	}
}

// TestHandoffBalance: 64 keep-alive connections opened at once over 4
// workers land 16 per worker (max-min ≤ 1), by /proc and by /metrics.
func TestHandoffBalance(t *testing.T) {
	const workers, conns = 4, 64
	s := startServer(t, workers, "--mode", "handoff")
	openKeepAlive(t, s.addr, conns)
	perPID := map[int]int{}
	for _, pids := range connOwners(t, s) {
		for _, pid := range pids {
			perPID[pid]++
		}
	}
	var counts []int
	for _, pid := range s.workerPIDs() {
		counts = append(counts, perPID[pid])
	}
	if lo, hi := spread(counts); hi-lo > 1 || len(counts) != workers {
		t.Errorf("connections per worker from /proc: got %v, want max-min ≤ 1 over %d workers", counts, workers)
	}
	active := activeBySlot(t, s, workers)
	sum := 0
	for _, n := range active {
		sum += n
	}
	if lo, hi := spread(active); hi-lo > 1 || sum != conns {
		t.Errorf("prefork_connections_active by slot: got %v (sum %d), want max-min ≤ 1 and sum %d", active, sum, conns)
	}
	m := scrape(t, s)
	for k := 0; k < workers; k++ {
		if v, _ := sample(t, m, "prefork_handoffs_total", fmt.Sprintf(`{worker="%d"}`, k)); int(v) != active[k] {
			t.Errorf("prefork_handoffs_total{worker=%d}: got %v, want %d (every connection it holds)", k, v, active[k])
		}
	}
}

// probeLoad makes requests on new connections from several goroutines and
// keeps, for each failure, when its connection was dialled.
type probeLoad struct {
	ok     atomic.Int64
	mu     sync.Mutex
	failed []time.Time
	errs   []error
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startProbeLoad(t *testing.T, addr string, clients int) *probeLoad {
	l := &probeLoad{stop: make(chan struct{})}
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
				at := time.Now()
				if err := get(addr); err != nil {
					l.mu.Lock()
					l.failed = append(l.failed, at)
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.finish)
	return l
}

func (l *probeLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *probeLoad) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	testkit.WaitFor(t, fmt.Sprintf("%d more requests", n), 30*time.Second, func() bool { return l.ok.Load() >= target })
}

// masterFDs counts the master's open fds.
func masterFDs(t testing.TB, s *server) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestHandoffWorkerKilled: a worker SIGKILLed while connections are being
// handed out. Lost: only what it held (its own keep-alive connections, and
// at most one in-flight connection per load client); every connection dialled
// after the master saw it die is served; the other workers' connections
// live on; the master leaks no fd and holds no connection at any time.
func TestHandoffWorkerKilled(t *testing.T) {
	const workers, longLived, clients = 4, 40, 4
	s := startServer(t, workers, "--mode", "handoff")
	long := openKeepAlive(t, s.addr, longLived)
	before := s.readyWorkers()
	victim := before[1]
	held := 0
	for _, pids := range connOwners(t, s) {
		if len(pids) == 1 && pids[0] == victim {
			held++
		}
	}
	fdsBefore := masterFDs(t, s)

	ld := startProbeLoad(t, s.addr, clients)
	ld.waitRequests(t, 100)
	if err := unix.Kill(victim, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if n := masterConnFDs(t, s); n != 0 {
		t.Errorf("connection fds in the master during the crash: got %d, want 0", n)
	}
	testkit.WaitFor(t, "the master to see the death", 10*time.Second, func() bool { return len(s.logsWith("worker died")) > 0 })
	seen := time.Now()
	testkit.WaitFor(t, "slot 1 replaced", 10*time.Second, func() bool {
		pid, ok := s.readyWorkers()[1]
		return ok && pid != victim
	})
	ld.waitRequests(t, 200)
	ld.finish()

	ld.mu.Lock()
	failed, errs := ld.failed, ld.errs
	ld.mu.Unlock()
	t.Logf("load: %d ok, %d failed %v; the victim held %d keep-alive connections", ld.ok.Load(), len(failed), errs, held)
	if len(failed) > clients {
		t.Errorf("failed requests: got %d, want at most %d (one in flight per client on the dead worker)", len(failed), clients)
	}
	for _, at := range failed {
		if at.After(seen) {
			t.Errorf("a connection dialled %v after the master saw the death failed", at.Sub(seen))
		}
	}
	// The long-lived connections: those of the victim are gone, the rest
	// serve on.
	dead := 0
	for _, c := range long {
		if err := request(c); err != nil {
			dead++
		}
	}
	if dead != held {
		t.Errorf("long-lived connections lost: got %d, want %d (the victim's)", dead, held)
	}
	// No fd leaked: the master's table is as before (a new control socket
	// for the replacement, the old one closed).
	testkit.WaitFor(t, "the master's fds back to where they were", 10*time.Second, func() bool {
		return masterFDs(t, s) == fdsBefore
	})
	if n := masterConnFDs(t, s); n != 0 {
		t.Errorf("connection fds in the master: got %d, want 0", n)
	}
	m := scrape(t, s)
	if v, _ := sample(t, m, "prefork_handoff_errors_total", `{reason="no_worker"}`); v != 0 {
		t.Errorf("connections the master closed for want of a worker: got %v, want 0", v)
	}
	gone, _ := sample(t, m, "prefork_handoff_errors_total", `{reason="worker_gone"}`)
	t.Logf("connections re-placed after a send to the dead worker failed: %v", gone)
}

// TestHandoffReloadAndScale: HUP twice, TTIN and TTOU twice under a load of
// new connections: no request fails, the listening socket is the same one
// throughout, the master never holds a connection.
func TestHandoffReloadAndScale(t *testing.T) {
	s := startServer(t, 3, "--mode", "handoff")
	listenerOf := func() map[uint64]bool {
		listening := listeningInodes(t)
		out := map[uint64]bool{}
		for _, ino := range socketInodes(t, s.pid) {
			if listening[ino] {
				out[ino] = true
			}
		}
		return out
	}
	first := listenerOf()
	ld := startLoad(t, s.addr, 4)
	ld.waitRequests(t, 50)
	for i := 1; i <= 2; i++ {
		s.reload(i, 3)
		ld.waitRequests(t, 50)
		if n := masterConnFDs(t, s); n != 0 {
			t.Errorf("reload %d: connection fds in the master: got %d, want 0", i, n)
		}
	}
	s.signal(unix.SIGTTIN)
	s.waitReady(4)
	ld.waitRequests(t, 100)
	s.signal(unix.SIGTTOU)
	s.waitReady(3)
	ld.waitRequests(t, 100)
	s.signal(unix.SIGTTOU)
	s.waitReady(2)
	ld.waitRequests(t, 100)
	ld.check(t)
	if got := listenerOf(); len(got) != len(first) || !sameKeys(got, first) {
		t.Errorf("the master's listening sockets changed: got %v, want %v (they never close before the stop)", got, first)
	}
}

func sameKeys(a, b map[uint64]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestHandoffGracefulStop: TERM → the master stops accepting (new
// connections are refused), the idle keep-alive connection is closed, the
// request in flight is answered with Connection: close, exit 0.
func TestHandoffGracefulStop(t *testing.T) {
	// One worker, as in TestGracefulStop: with two, the busy connection's
	// worker may not have taken its STOP yet when the idle one's has closed.
	s := startServer(t, 1, "--mode", "handoff", "--graceful-timeout", "20s")
	idle := dialKeepAlive(t, s.addr)
	busy := dialKeepAlive(t, s.addr)
	fmt.Fprint(busy, "GET /slow HTTP/1.1\r\nHost: t\r\n") // in flight: no final CRLF
	// Wait for the worker to have read the partial head (the loop counts
	// the bytes), so the drain finds the request in flight.
	testkit.WaitFor(t, "the partial head read", 10*time.Second, func() bool {
		v, _ := sample(t, scrape(t, s), "prefork_read_bytes_total", `{worker="0"}`)
		return v >= float64(2*len("GET / HTTP/1.1\r\nHost: t\r\n\r\n")+len("GET /slow HTTP/1.1\r\nHost: t\r\n"))
	})
	s.signal(unix.SIGTERM)
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
		t.Fatalf("idle keep-alive connection: got %q, %v; want EOF", b, err)
	}
	testkit.WaitFor(t, "new connections refused", 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	fmt.Fprint(busy, "\r\n")
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(busy)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) || !bytes.Contains(b, []byte("Connection: close")) {
		t.Fatalf("in-flight request: got %q, want a 200 with Connection: close", b)
	}
	if code := s.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("master exit code: got %d, want 0", code)
	}
	testkit.WaitFor(t, "no worker left", 2*time.Second, func() bool { return len(s.workerPIDsAny()) == 0 })
}
