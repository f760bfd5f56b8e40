package master_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/proc"
	"github.com/prefork/prefork/internal/testkit"
)

// sumSeries adds up every sample of the metric name whose labels contain
// each of the label pairs given (`reason="header_timeout"`, say).
func sumSeries(t testing.TB, exposition, name string, labels ...string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(exposition, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("%s%s: %v", name, m[1], err)
		}
		sum += v
	}
	return sum
}

func (s *server) metric(name string, labels ...string) float64 {
	s.t.Helper()
	_, body := httpGet(s.t, "http://"+s.metricsAddr+"/metrics")
	return sumSeries(s.t, body, name, labels...)
}

// keepAliveLoad is clients that each keep one connection and send a request
// after every response, as wrk does, reconnecting only when a response says
// "Connection: close". A request sent on a connection that then fails
// without its response is a failure: the client cannot tell that from a
// server that died.
type keepAliveLoad struct {
	ok, failed, reconnects atomic.Int64
	mu                     sync.Mutex
	errs                   []error
	stop                   chan struct{}
	wg                     sync.WaitGroup
}

func startKeepAliveLoad(t testing.TB, addr string, clients int) *keepAliveLoad {
	l := &keepAliveLoad{stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(addr)
		}()
	}
	t.Cleanup(l.finish)
	return l
}

func (l *keepAliveLoad) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, err)
	}
	l.mu.Unlock()
}

func (l *keepAliveLoad) client(addr string) {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
				l.fail(fmt.Errorf("connect: %w", err))
				c = nil
				continue
			}
			br = bufio.NewReader(c)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			l.fail(fmt.Errorf("write: %w", err))
			c.Close()
			c = nil
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			l.fail(fmt.Errorf("response: %w", err))
		case resp.StatusCode != 200:
			l.fail(fmt.Errorf("status %d", resp.StatusCode))
		default:
			l.ok.Add(1)
		}
		if err != nil || resp.Close {
			c.Close()
			c = nil
			if err == nil {
				l.reconnects.Add(1)
			}
		}
	}
}

func (l *keepAliveLoad) waitRequests(t testing.TB, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	testkit.WaitFor(t, fmt.Sprintf("%d more keep-alive requests", n), 30*time.Second, func() bool { return l.ok.Load() >= target })
}

func (l *keepAliveLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *keepAliveLoad) check(t testing.TB) {
	t.Helper()
	l.finish()
	t.Logf("keep-alive load: %d requests ok, %d failed, %d reconnects after Connection: close",
		l.ok.Load(), l.failed.Load(), l.reconnects.Load())
	if l.failed.Load() > 0 {
		t.Errorf("failed keep-alive requests: got %d, want 0; first errors: %v", l.failed.Load(), l.errs)
	}
}

// TestKeepAliveReload: keep-alive clients that send their next request the
// moment a response arrives lose nothing while the master reloads (HUP)
// and scales (TTIN, TTOU) under them: a draining worker answers what
// arrives with "Connection: close" rather than closing under a request.
func TestKeepAliveReload(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, 3, "--mode", mode)
			ld := startKeepAliveLoad(t, s.addr, 16)
			ld.waitRequests(t, 200)
			for i := 1; i <= 3; i++ {
				s.reload(i, 3)
				ld.waitRequests(t, 200)
			}
			s.signal(unix.SIGTTIN)
			s.waitReady(4)
			ld.waitRequests(t, 200)
			s.signal(unix.SIGTTOU)
			s.waitReady(3)
			ld.waitRequests(t, 200)
			ld.check(t)
			if ld.reconnects.Load() == 0 {
				t.Error("no response said Connection: close: the drains never met a keep-alive request")
			}
		})
	}
}

// TestSlowloris: clients that send a request head one byte at a time are
// answered 408 and closed once their heads have taken --header-timeout,
// while a normal client is served throughout; the closes are counted.
func TestSlowloris(t *testing.T) {
	const slow = 40
	s := startServer(t, 2, "--header-timeout", "1s", "--idle-timeout", "60s")
	conns := make([]net.Conn, slow)
	for i := range conns {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	head := "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + strings.Repeat("a", 200)
	start := time.Now()
	closed := make(chan string, slow)
	for _, c := range conns {
		go func() {
			b, _ := io.ReadAll(c)
			closed <- string(b)
		}()
	}
	done := 0
	for i := 0; done < slow; i++ {
		if i < len(head) {
			for _, c := range conns {
				_, _ = c.Write([]byte{head[i]}) // fails once the server has closed it
			}
		}
		if err := get(s.addr); err != nil {
			t.Fatalf("a normal client during the slow heads: %v", err)
		}
		for drained := false; !drained; {
			select {
			case b := <-closed:
				done++
				if !strings.HasPrefix(b, "HTTP/1.1 408 ") {
					t.Errorf("slow client: got %q, want a 408", b)
				}
			case <-time.After(100 * time.Millisecond):
				drained = true
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%d of %d slow heads still open after %v with --header-timeout 1s", slow-done, slow, time.Since(start))
		}
	}
	took := time.Since(start)
	t.Logf("%d slow heads closed within %v", slow, took)
	if took < time.Second {
		t.Errorf("slow heads closed after %v, before --header-timeout 1s", took)
	}
	testkit.WaitFor(t, "header timeouts counted", 10*time.Second, func() bool {
		return s.metric("prefork_connections_closed_total", `reason="header_timeout"`) == slow
	})
}

// TestNeverReader: a client that pipelines requests and never reads the
// answers is closed once its output has made no progress for
// --write-timeout, and the worker's memory comes back down.
func TestNeverReader(t *testing.T) {
	s := startServer(t, 1, "--write-timeout", "1s")
	pid := s.workerPIDs()[0]
	rss := func() int64 {
		n, err := proc.RSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := rss()
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	// Pipeline requests until the server stops reading (its output is past
	// the high-water mark and the kernel buffers are full both ways).
	req := []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: t\r\n\r\n", 64))
	sent := 0
	start := time.Now()
	for {
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Write(req)
		sent += n
		if err != nil {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the server kept reading a client that never reads for 20 s")
		}
	}
	peak := rss()
	testkit.WaitFor(t, "the never-reading client to be closed", 15*time.Second, func() bool {
		return s.metric("prefork_connections_closed_total", `reason="write_timeout"`) == 1
	})
	t.Logf("pipelined %d KiB before the server stopped reading; worker RSS %d KiB before, %d KiB at the peak, %d KiB after the close",
		sent>>10, before>>10, peak>>10, rss()>>10)
	if grow := peak - before; grow > 32<<20 {
		t.Errorf("worker RSS grew by %d KiB for one never-reading client, want under 32 MiB", grow>>10)
	}
	if err := get(s.addr); err != nil {
		t.Fatalf("after the close: %v", err)
	}
}

// TestMaxConnsQueues: at --max-conns the worker stops accepting; the
// connections past it wait in the backlog (not reset) and are served as
// earlier ones close; the pauses are counted.
func TestMaxConnsQueues(t *testing.T) {
	s := startServer(t, 1, "--max-conns", "4")
	conns := make([]*bufio.ReadWriter, 10)
	raw := make([]net.Conn, len(conns))
	for i := range conns {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		raw[i] = c
		conns[i] = bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(i int) error {
		resp, err := http.ReadResponse(conns[i].Reader, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	for i := 0; i < 4; i++ {
		if err := answered(i); err != nil {
			t.Fatalf("connection %d, under the limit: %v", i, err)
		}
	}
	testkit.WaitFor(t, "accepting paused", 10*time.Second, func() bool {
		return s.metric("prefork_accept_paused_total") >= 1
	})
	for i := 4; i < len(conns); i++ {
		raw[i-4].Close()
		if err := answered(i); err != nil {
			t.Fatalf("queued connection %d after one closed: %v", i, err)
		}
	}
}

// TestEMFILEWorker: a worker whose fd limit (--rlimit-nofile) is below
// --max-conns runs out of descriptors; it sheds what it cannot take (a
// clean close), does not crash or spin, and serves again once fds free up.
func TestEMFILEWorker(t *testing.T) {
	s := startServer(t, 1, "--rlimit-nofile", "64", "--max-conns", "1000")
	pid := s.workerPIDs()[0]
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`Max open files\s+64\s`).Match(limits) {
		t.Fatalf("worker limits: want Max open files 64:\n%s", limits)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	shed := 0
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			shed++
			continue
		}
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			shed++ // accepted and closed for lack of fds
		}
	}
	if shed == 0 {
		t.Fatal("no connection was shed: the fd limit was never reached")
	}
	cpu0, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	testkit.WaitFor(t, "the worker to serve again", 10*time.Second, func() bool { return get(s.addr) == nil })
	cpu1, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.workerPIDs(); len(got) != 1 || got[0] != pid {
		t.Errorf("workers after EMFILE: got %v, want the same one (%d)", got, pid)
	}
	if r := s.metric("prefork_worker_restarts_total"); r != 0 {
		t.Errorf("worker restarts: got %v, want 0", r)
	}
	t.Logf("shed %d of 100; worker CPU during the recovery: %d ticks", shed, (cpu1.UTime+cpu1.STime)-(cpu0.UTime+cpu0.STime))
}
