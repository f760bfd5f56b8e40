package master_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testenv"
	"github.com/prefork/prefork/internal/testkit"
	"golang.org/x/sys/unix"
)

var modes = []string{"reuseport", "shared"}

// socketInodes returns the inodes of pid's socket fds.
func socketInodes(t testing.TB, pid int) []uint64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range ents {
		link, _ := os.Readlink(dir + "/" + e.Name())
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
			out = append(out, n)
		}
	}
	return out
}

// listeningInodes reads the inodes of listening TCP sockets from /proc/net.
func listeningInodes(t testing.TB) map[uint64]bool {
	t.Helper()
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
			if len(fields) > 9 && fields[3] == "0A" { // TCP_LISTEN
				n, _ := strconv.ParseUint(fields[9], 10, 64)
				out[n] = true
			}
		}
	}
	return out
}

// TestProcessModelAndFDIsolation: 3 workers are the master's children; in
// shared mode they hold one identical listener, in reuseport mode one
// distinct listener each; no connection socket is in two workers; nothing
// else of the master's is inherited.
func TestProcessModelAndFDIsolation(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, 3, "--mode", mode)
			if got := len(s.workerPIDs()); got != 3 {
				t.Fatalf("children of the master: got %d, want 3", got)
			}
			// Open connections that stay open, spread over the workers.
			var conns []net.Conn
			for i := 0; i < 60; i++ {
				c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
				conns = append(conns, c)
			}
			for _, c := range conns { // each answered: accepted by some worker
				buf := make([]byte, 1)
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
			}
			listening := listeningInodes(t)
			var listenerSets [][]uint64
			owner := map[uint64]int{}
			conns0 := 0
			for _, pid := range s.workerPIDs() {
				var ls []uint64
				for _, ino := range socketInodes(t, pid) {
					if listening[ino] {
						ls = append(ls, ino)
						continue
					}
					if other, dup := owner[ino]; dup {
						t.Errorf("socket %d is in workers %d and %d", ino, other, pid)
					}
					owner[ino] = pid
					conns0++
				}
				listenerSets = append(listenerSets, ls)
			}
			for i, ls := range listenerSets {
				if len(ls) != 1 {
					t.Fatalf("worker %d holds %d listening sockets, want 1", i, len(ls))
				}
			}
			distinct := map[uint64]bool{}
			for _, ls := range listenerSets {
				distinct[ls[0]] = true
			}
			want := map[string]int{"shared": 1, "reuseport": 3}[mode]
			if len(distinct) != want {
				t.Errorf("distinct listeners over 3 workers: got %d, want %d", len(distinct), want)
			}
			// 60 client connections plus one control socket per worker.
			if conns0 != 60+3 {
				t.Errorf("non-listening sockets in workers: got %d, want %d (60 connections + 3 control sockets)", conns0, 63)
			}
		})
	}
}

// TestWorkerKilled: SIGKILL of a worker → replaced at once, and connections
// made while it is down are all served (reuseport: its queue waits for the
// replacement).
func TestWorkerKilled(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, 3, "--mode", mode)
			before := s.readyWorkers()
			victim := before[1]
			start := time.Now()
			if err := unix.Kill(victim, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Connections made right after the kill: some land in the dead
			// worker's queue (reuseport) and must wait, not fail.
			errs := make(chan error, 60)
			for i := 0; i < 60; i++ {
				go func() { errs <- get(s.addr) }()
			}
			var replaced time.Duration
			testkit.WaitFor(t, "slot 1 replaced", 10*time.Second, func() bool {
				pid, ok := s.readyWorkers()[1]
				if ok && pid != victim {
					replaced = time.Since(start)
					return true
				}
				return false
			})
			t.Logf("%s: crash-to-ready of slot 1: %v (status polled every 10ms)", mode, replaced)
			for i := 0; i < 60; i++ {
				if err := <-errs; err != nil {
					t.Errorf("request after the kill: %v", err)
				}
			}
			st := s.status()
			for _, w := range st.Workers {
				if w.Slot == 1 && w.Restarts != 1 {
					t.Errorf("slot 1 restarts: got %d, want 1", w.Restarts)
				}
			}
			if len(s.workerPIDs()) != 3 {
				t.Errorf("workers: got %d, want 3", len(s.workerPIDs()))
			}
		})
	}
}

// TestReloadUnderLoad: 3 HUPs under a load of new connections → every worker
// pid changes, no request fails.
func TestReloadUnderLoad(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, 3, "--mode", mode)
			first := s.readyWorkers()
			ld := startLoad(t, s.addr, 4)
			ld.waitRequests(t, 50)
			seen := map[int]bool{}
			for _, pid := range first {
				seen[pid] = true
			}
			for i := 1; i <= 3; i++ {
				s.reload(i, 3)
				for slot, pid := range s.readyWorkers() {
					if seen[pid] {
						t.Errorf("reload %d: slot %d kept pid %d", i, slot, pid)
					}
					seen[pid] = true
				}
				ld.waitRequests(t, 50)
			}
			ld.check(t)
		})
	}
}

// TestScaleUnderLoad: TTIN then 2×TTOU → 4 then 2 workers, no failed request.
func TestScaleUnderLoad(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, 3, "--mode", mode)
			ld := startLoad(t, s.addr, 4)
			ld.waitRequests(t, 50)
			s.signal(unix.SIGTTIN)
			s.waitReady(4)
			ld.waitRequests(t, 100)
			s.signal(unix.SIGTTOU)
			s.waitReady(3)
			ld.waitRequests(t, 100)
			s.signal(unix.SIGTTOU)
			ready := s.waitReady(2)
			if _, ok := ready[0]; !ok {
				t.Errorf("slots after scaling down: got %v, want 0 and 1", ready)
			}
			ld.waitRequests(t, 100)
			ld.check(t)
			if got := s.status().Desired; got != 2 {
				t.Errorf("desired workers: got %d, want 2", got)
			}
		})
	}
}

// TestGracefulStop: TERM → a request in flight on a keep-alive connection is
// answered with Connection: close, an idle keep-alive connection is closed at
// once and does not delay the exit, the master exits 0, no worker survives.
func TestGracefulStop(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			// One worker: both connections must be on the worker whose drain
			// the test observes (with two, the busy connection's worker may
			// not have received STOP yet when the idle one's has closed).
			s := startServer(t, 1, "--mode", mode, "--graceful-timeout", "20s")
			idle := dialKeepAlive(t, s.addr)
			busy := dialKeepAlive(t, s.addr)
			// A request in flight: the head without its final CRLF.
			fmt.Fprint(busy, "GET /slow HTTP/1.1\r\nHost: t\r\n")
			// Make sure the worker has read the partial head before TERM.
			time.Sleep(50 * time.Millisecond) // the partial head only needs to reach the worker's socket buffer; no reply to wait for
			start := time.Now()
			s.signal(unix.SIGTERM)

			// The idle connection is closed at once.
			_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
				t.Fatalf("idle keep-alive connection: got %q, %v; want EOF", b, err)
			}
			// The in-flight request is answered, with Connection: close.
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
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("stop took %v: idle connections held it up", el)
			}
			testkit.WaitFor(t, "no worker left", 2*time.Second, func() bool { return len(s.workerPIDsAny()) == 0 })
			if _, err := os.Stat(s.pidfile); !os.IsNotExist(err) {
				t.Errorf("pidfile still there after exit: %v", err)
			}
		})
	}
}

// dialKeepAlive opens a connection and makes one keep-alive request on it.
func dialKeepAlive(t testing.TB, addr string) net.Conn {
	t.Helper()
	c := testkit.Dial(t, addr)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, len("Hello, World!"))
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if br.Buffered() != 0 {
		t.Fatalf("%d unexpected bytes after the response", br.Buffered())
	}
	return c
}

func TestFastStop(t *testing.T) {
	s := startServer(t, 2)
	busy := dialKeepAlive(t, s.addr)
	s.signal(unix.SIGINT)
	if code := s.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("master exit code: got %d, want 0", code)
	}
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(busy); err != nil {
		t.Fatalf("connection after fast stop: got %v, want EOF", err)
	}
	testkit.WaitFor(t, "no worker left", 2*time.Second, func() bool { return len(s.workerPIDsAny()) == 0 })
}

// TestMasterKilled: SIGKILL of the master → workers gone within a second.
func TestMasterKilled(t *testing.T) {
	s := startServer(t, 3)
	workers := s.workerPIDs()
	s.signal(unix.SIGKILL)
	s.waitExit(5 * time.Second)
	start := time.Now()
	testkit.WaitFor(t, "workers to die with their master", time.Second, func() bool {
		for _, pid := range workers {
			if unix.Kill(pid, 0) == nil && procState(pid) != "Z" {
				return false
			}
		}
		return true
	})
	t.Logf("workers gone %v after the master's exit was seen", time.Since(start))
}

// TestHungWorker: a worker whose loop is stuck stops heartbeating and is
// aborted and replaced.
func TestHungWorker(t *testing.T) {
	s := startServer(t, 2, "--proto", "hang", "--worker-timeout", "1s")
	before := s.readyWorkers()
	// Wedge whichever worker takes this connection.
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hang")
	start := time.Now()
	testkit.WaitFor(t, "the hung worker to be replaced", 15*time.Second, func() bool {
		after := s.readyWorkers()
		changed := 0
		for slot, pid := range before {
			if after[slot] != 0 && after[slot] != pid {
				changed++
			}
		}
		return changed == 1 && len(after) == 2
	})
	t.Logf("hung worker replaced after %v (worker-timeout 1s)", time.Since(start))
	if len(s.logsWith("worker hung: no heartbeat; aborting it")) != 1 {
		t.Errorf("want one 'worker hung' log record")
	}
	// The connection to the hung worker was cut.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !isReset(err) {
		t.Errorf("connection to the hung worker: %v", err)
	}
	// Echo still works.
	e, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_ = e.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(e, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(e, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo after replacement: got %q, %v", buf, err)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

// TestCrashLoopBackoff: a worker that dies at start is restarted at once the
// first time, then after growing delays; the master keeps running and stops
// cleanly.
func TestCrashLoopBackoff(t *testing.T) {
	s := startServer(t, 0, "--workers", "1", "--proto", "crash")
	testkit.WaitFor(t, "four backoffs", 20*time.Second, func() bool {
		return len(s.logsWith("worker crash loop: backing off")) >= 4
	})
	var delays []time.Duration
	for _, m := range s.logsWith("worker crash loop: backing off")[:4] {
		ns, _ := m["delay"].(float64) // slog's JSON writes durations in nanoseconds
		delays = append(delays, time.Duration(ns))
	}
	t.Logf("backoff delays: %v", delays)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("backoff %d: got %s, want %s", i, delays[i], want[i])
		}
	}
	s.signal(unix.SIGTERM)
	if code := s.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("master exit code: got %d, want 0", code)
	}
}

func TestControlCommands(t *testing.T) {
	s := startServer(t, 2)
	out, err := exec.Command(bin, "status", "--pidfile", s.pidfile).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"SLOT", "PID", "UPTIME", "STATE", "RESTARTS", "ready"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	before := s.readyWorkers()
	if out, err := exec.Command(bin, "reload", "--pidfile", s.pidfile).CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	testkit.WaitFor(t, "reload", 20*time.Second, func() bool {
		after := s.readyWorkers()
		return len(after) == 2 && after[0] != before[0] && after[1] != before[1]
	})
	if out, err := exec.Command(bin, "stop", "--pidfile", s.pidfile).CombinedOutput(); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if code := s.waitExit(5 * time.Second); code != 0 {
		t.Fatalf("master exit code: got %d, want 0", code)
	}
}

// TestProtocolFlags: a program's own flag (app.Protocol.Flags) reaches its
// workers across the re-exec.
func TestProtocolFlags(t *testing.T) {
	s := startServer(t, 2, "--proto", "greet", "--greeting", "hola, mundo")
	for i := 0; i < 4; i++ { // connections land on both workers
		c := testkit.Dial(t, s.addr)
		if _, err := c.Write([]byte("?")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := io.ReadAtLeast(c, buf, len("hola, mundo"))
		if err != nil || string(buf[:n]) != "hola, mundo" {
			t.Fatalf("got %q, %v; want the flag's value", buf[:n], err)
		}
		c.Close()
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown proto", []string{"serve", "--proto", "gopher"}, 2, `unknown --proto "gopher"`},
		{"bad workers", []string{"serve", "--workers", "zero"}, 2, "--workers"},
		{"bad mode", []string{"serve", "--mode", "fork"}, 2, `unknown --mode "fork"`},
		{"bad log format", []string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		// Settings that cannot work fail before any socket is bound (exit 2,
		// naming the flag), never as a crash loop of workers.
		{"bad listen", []string{"serve", "--listen", "nonsense", "--workers", "1"}, 2, "nonsense"},
		{"unknown user", []string{"serve", "--user", "nosuchuser", "--workers", "1"}, 2, "--user nosuchuser"},
		{"unknown group", []string{"serve", "--group", "nosuchgroup", "--workers", "1"}, 2, "--group nosuchgroup"},
		{"pidfile directory missing", []string{"serve", "--pidfile", "/nonexistent/dir/p.pid"}, 2, "--pidfile"},
		{"bad metrics address", []string{"serve", "--metrics-listen", "localhost"}, 2, "--metrics-listen"},
		{"negative idle timeout", []string{"serve", "--idle-timeout", "-1s"}, 2, "--idle-timeout"},
		{"several at once", []string{"serve", "--workers", "0", "--log-level", "loud"}, 2, "--log-level"},
		{"bad max worker rss", []string{"serve", "--max-worker-rss", "lots"}, 2, "--max-worker-rss"},
		{"negative max requests", []string{"serve", "--max-requests", "-3"}, 2, "--max-requests -3"},
		{"jitter alone", []string{"serve", "--max-requests-jitter", "9"}, 2, "--max-requests-jitter 9: needs --max-requests"},
		{"status without pidfile", []string{"status"}, 2, "--pidfile"},
		{"scale to zero", []string{"scale", "0", "--pidfile", "/nonexistent/p.pid"}, 2, `argument N "0": want a whole number of workers, at least 1`},
		{"scale to a word", []string{"scale", "four", "--pidfile", "/nonexistent/p.pid"}, 2, `argument N "four"`},
		{"scale without N", []string{"scale", "--pidfile", "/nonexistent/p.pid"}, 2, "want one argument N"},
		{"scale without pidfile", []string{"scale", "3"}, 2, "--pidfile"},
		{"worker by hand", []string{"worker"}, 2, "PREFORK_WORKER_SPEC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "PREFORK_LISTEN=127.0.0.1:0")
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("got %v, want exit code %d\n%s", err, tc.code, out)
			}
			if ee.ExitCode() != tc.code {
				t.Errorf("exit code: got %d, want %d\n%s", ee.ExitCode(), tc.code, out)
			}
			if !bytes.Contains(out, []byte(tc.msg)) {
				t.Errorf("output: got %q, want it to mention %q", out, tc.msg)
			}
		})
	}
}

// TestDropPrivileges: with --user/--group the workers run unprivileged while
// the root master keeps the sockets.
func TestDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root: only a root master can start workers as another user")
	}
	s := startServer(t, 2, "--user", "nobody", "--group", "nogroup")
	for _, pid := range s.workerPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		var uid, gid string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				uid = f[1]
			} else if len(f) > 1 && f[0] == "Gid:" {
				gid = f[1]
			}
		}
		if uid != "65534" || gid != "65534" {
			t.Errorf("worker %d runs as uid %s gid %s, want 65534 (nobody/nogroup)", pid, uid, gid)
		}
	}
	for i := 0; i < 10; i++ {
		if err := get(s.addr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPID1ReapsOrphans runs the master as PID 1 of a new PID namespace
// (unshare) with workers that orphan a child and exit: the orphans are
// re-parented to the master, which must reap them (no zombie stays).
func TestPID1ReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root: creating a PID namespace (unshare --pid) is privileged")
	}
	unshare := requireTool(t, "unshare", "util-linux")
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", "--mount-proc", bin, "serve", "--workers", "1",
		"--proto", "orphan", "--listen", "127.0.0.1:0", "--metrics-listen", "")
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var master int
	defer func() {
		if master != 0 {
			_ = unix.Kill(master, unix.SIGKILL) // PID 1 of the namespace: everything in it dies with it
		}
		_ = unix.Kill(cmd.Process.Pid, unix.SIGKILL) // unshare --kill-child: SIGKILLs its child too
		<-done
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	testkit.WaitFor(t, "the master inside the namespace", 10*time.Second, func() bool {
		kids := childrenOf(cmd.Process.Pid, false)
		if len(kids) == 1 {
			master = kids[0]
		}
		return master != 0
	})
	// Watch the master's children for two seconds: orphaned sleeps must show
	// up as its children (proof the scenario happens) and never stay zombies.
	adopted := map[int]bool{}
	zombieSince := map[int]time.Time{}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range childrenOf(master, true) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) != "sleep" {
				continue
			}
			adopted[pid] = true
			if procState(pid) == "Z" {
				if _, ok := zombieSince[pid]; !ok {
					zombieSince[pid] = time.Now()
				}
				if time.Since(zombieSince[pid]) > 500*time.Millisecond {
					t.Fatalf("orphan %d is a zombie child of the PID 1 master for over 500ms: not reaped", pid)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(adopted) == 0 {
		t.Fatal("no orphan was re-parented to the master: the test proves nothing")
	}
	t.Logf("%d orphans adopted and reaped", len(adopted))
}

// TestCPUAffinity: with --cpu-affinity, worker slot k is pinned to the k-th
// usable CPU: every thread of the process, since its loop's goroutine may run
// on any of them.
func TestCPUAffinity(t *testing.T) {
	s := startServer(t, 2, "--cpu-affinity")
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	for slot, pid := range s.readyWorkers() {
		want := strconv.Itoa(cpus[slot%len(cpus)])
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		pinned, others := 0, 0
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
					if strings.TrimSpace(v) == want {
						pinned++
					} else {
						others++
					}
				}
			}
		}
		if len(cpus) > 1 && (pinned == 0 || others != 0) {
			t.Errorf("slot %d (pid %d): %d threads pinned to CPU %s and %d elsewhere, want all on %s", slot, pid, pinned, want, others, want)
		}
	}
}

// TestAccessLogFile: --access-log PATH is opened by the master and written
// by its workers, even when they run as a user that could not open it.
func TestAccessLogFile(t *testing.T) {
	dir := t.TempDir() // 0700, root's when the tests run as root
	path := filepath.Join(dir, "access.log")
	args := []string{"--access-log", path}
	if os.Geteuid() == 0 {
		args = append(args, "--user", "nobody", "--group", "nogroup")
	}
	s := startServer(t, 2, args...)
	const n = 20
	for i := 0; i < n; i++ {
		if err := get(s.addr); err != nil {
			t.Fatal(err)
		}
	}
	s.signal(unix.SIGTERM) // a graceful stop writes what is buffered
	if code := s.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != n || !strings.Contains(lines[0], `"GET / HTTP/1.1" 200 13 `) {
		t.Errorf("got %d lines, first %q; want %d lines of GET / 200 13", len(lines), lines[0], n)
	}
}

// TestStaticFiles: --root serves a directory through the real binary, as
// --user nobody when the tests run as root; a 1 GiB sparse file goes to 8
// clients at once byte-identical while the workers' memory stays flat.
func TestStaticFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>hi</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 30
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, size / 2, size - 8} { // markers, so a shifted or short copy shows
		if _, err := f.WriteAt([]byte("MARKER!!"), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if err := os.Chmod(big, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256File(t, big)

	args := []string{"--root", dir}
	if os.Geteuid() == 0 {
		args = append(args, "--user", "nobody", "--group", "nogroup")
	}
	s := startServer(t, 2, args...)
	resp, err := http.Get("http://" + s.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "<p>hi</p>" {
		t.Fatalf("GET /: got %d %q", resp.StatusCode, b)
	}

	if os.Geteuid() == 0 {
		// A file the workers' user may not read: 403, and the worker serves on.
		secret := filepath.Join(dir, "private.txt")
		if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			resp, err := http.Get("http://" + s.addr + "/private.txt")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || strings.Contains(string(b), "root only") {
				t.Errorf("unreadable file as nobody: got %d %q, want 403", resp.StatusCode, b)
			}
		}
	}

	rssBefore := workersRSS(t, s)
	var wg sync.WaitGroup
	sums := make(chan string, 8)
	peak := atomic.Int64{}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				if r := workersRSS(t, s); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + s.addr + "/big.img")
			if err != nil {
				sums <- err.Error()
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || n != size {
				sums <- fmt.Sprintf("got %d bytes, %v", n, err)
				return
			}
			sums <- hex.EncodeToString(h.Sum(nil))
		}()
	}
	wg.Wait()
	close(done)
	close(sums)
	for got := range sums {
		if got != want {
			t.Errorf("a client got %s, want sha256 %s", got, want)
		}
	}
	t.Logf("workers' RSS %d KiB before, %d KiB at most during 8 × 1 GiB", rssBefore, peak.Load())

	// 1000 downloads cut off mid-file leave no file descriptor behind.
	fdsOnBig := func() int {
		n := 0
		for _, pid := range s.workerPIDs() {
			ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			for _, e := range ents {
				if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); link == big {
					n++
				}
			}
		}
		return n
	}
	cached := fdsOnBig() // the open-file cache's own descriptor(s)
	for i := 0; i < 1000; i++ {
		c := testkit.Dial(t, s.addr)
		if _, err := io.WriteString(c, "GET /big.img HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil { // the body has begun
			t.Fatal(err)
		}
		_ = c.SetLinger(0)
		c.Close()
	}
	testkit.WaitFor(t, "the aborted downloads' descriptors closed", 10*time.Second, func() bool { return fdsOnBig() <= max(cached, 2) })
	if grew := peak.Load() - rssBefore; grew > 64<<10 {
		t.Errorf("workers' RSS grew by %d KiB while sending the file: it should not be copied through memory", grew)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// workersRSS sums VmRSS of the master's workers, in KiB.
func workersRSS(t *testing.T, s *server) int64 {
	var total int64
	for _, pid := range s.workerPIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb
			}
		}
	}
	return total
}
