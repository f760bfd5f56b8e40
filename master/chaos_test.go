package master_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/chaoskit"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/master"
)

// The short form of scripts/chaos (same engine, package chaoskit): a load of
// new and keep-alive connections through SIGKILLs, reloads and scaling, with
// every failure sorted into "on a connection the killed worker held" (expected)
// and the rest (reload and scaling failures: none allowed).

// quickExit makes race-built workers exit as soon as they are done: the race
// runtime otherwise sleeps a second at exit (GORACE atexit_sleep_ms=1000),
// which would stretch every reload's wait for the old worker to be gone.
func quickExit(t *testing.T) {
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// serverPort is the port of s.addr.
func serverPort(t testing.TB, s *server) uint16 {
	t.Helper()
	_, p, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

// waitReloaded waits until the reload after before is done: counted, every
// slot's worker of a newer generation than in before and ready, nothing else
// running.
func waitReloaded(t testing.TB, s *server, before master.Status) {
	t.Helper()
	gen := map[int]int{}
	for _, w := range before.Workers {
		gen[w.Slot] = max(gen[w.Slot], w.Generation)
	}
	testkit.WaitFor(t, fmt.Sprintf("reload %d done", before.Reloads+1), 30*time.Second, func() bool {
		st := s.status()
		if st.Reloads <= before.Reloads || len(st.Workers) != st.Desired || len(s.workerPIDs()) != st.Desired {
			return false
		}
		for _, w := range st.Workers {
			if w.State != "ready" || w.Generation <= gen[w.Slot] {
				return false
			}
		}
		return true
	})
}

// waitReplaced waits until slot's worker is a ready process other than old
// and n workers are ready with nothing else running.
func waitReplaced(t testing.TB, s *server, slot, old, n int) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("slot %d's worker %d replaced", slot, old), 30*time.Second, func() bool {
		pid, ok := s.readyWorkers()[slot]
		return ok && pid != old
	})
	s.waitReady(n)
}

// stableFDs waits until pid's fd count is the same in three polls in a row
// and returns it: the master closes its end of an admin connection (the
// status a wait has just asked) a moment after answering.
func stableFDs(t testing.TB, pid int) int {
	t.Helper()
	last, same := -1, 0
	testkit.WaitFor(t, fmt.Sprintf("a steady fd count of %d", pid), 10*time.Second, func() bool {
		n, err := chaoskit.FDCount(pid)
		if err != nil {
			t.Fatal(err)
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 2
	})
	return last
}

// TestChaos, in both modes: a load of new and keep-alive connections goes on
// while workers are SIGKILLed (one idle, one just added, one during a reload)
// and the master reloads and scales up and down. Every failed request must be on a
// connection a killed worker held when it died: none may be lost to a reload
// or to scaling, whether queued, new or keep-alive.
//
// Until draining workers stop closing idle keep-alive connections at once,
// the keep-alive part fails: a client's next request on such a connection is
// on its way when the connection closes (reload, keep-alive failures).
func TestChaos(t *testing.T) {
	quickExit(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { testChaos(t, mode) })
	}
}

func testChaos(t *testing.T, mode string) {
	s := startServer(t, 2, "--mode", mode)
	ch, err := chaoskit.New(s.pid, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ld := chaoskit.StartLoad(chaoskit.LoadOptions{Addr: s.addr, NewConns: 2, KeepAlive: 4, PerConn: 50,
		Gap: 2 * time.Millisecond, Timeout: 10 * time.Second, Body: []byte("Hello, World!")})
	t.Cleanup(ld.Stop)
	more := func(n int64) {
		t.Helper()
		_, ok := ld.Requests()
		testkit.WaitFor(t, fmt.Sprintf("%d more requests", n), 30*time.Second, func() bool {
			_, now := ld.Requests()
			return now >= ok+n
		})
	}
	kill := func(slot int) int {
		t.Helper()
		for try := 0; ; try++ {
			pid, ok := s.readyWorkers()[slot]
			if !ok {
				t.Fatalf("no ready worker in slot %d", slot)
			}
			_, err := ch.KillWorker(pid)
			if err == nil {
				return pid
			}
			// ESRCH: it exited since the status (a reload drained it).
			if !errors.Is(err, unix.ESRCH) || try == 3 {
				t.Fatalf("killing slot %d's worker %d: %v", slot, pid, err)
			}
		}
	}
	signal := func(sig unix.Signal) {
		t.Helper()
		if err := ch.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	more(200)

	old := kill(0)
	waitReplaced(t, s, 0, old, 2)
	more(100)

	before := s.status()
	signal(unix.SIGHUP)
	waitReloaded(t, s, before)
	more(100)

	signal(unix.SIGTTIN)
	s.waitReady(3)
	more(100)
	old = kill(2)
	waitReplaced(t, s, 2, old, 3)
	more(100)

	signal(unix.SIGTTOU)
	s.waitReady(2)
	more(100)

	// A kill in the middle of a reload: slot 1's worker, old or new.
	before = s.status()
	signal(unix.SIGHUP)
	testkit.WaitFor(t, "the reload's first replacement to start", 10*time.Second, func() bool {
		return len(s.status().Workers) > 2
	})
	old = kill(1)
	waitReloaded(t, s, before) // a killed worker's replacement is newer too
	if pid := s.readyWorkers()[1]; pid == old {
		t.Fatalf("slot 1 still has the killed worker %d", old)
	}
	more(100)

	signal(unix.SIGTTOU)
	s.waitReady(1)
	signal(unix.SIGTTIN)
	s.waitReady(2)
	more(200)

	ld.Stop()
	sum := chaoskit.Summarize(ld, ch.Events())
	var b strings.Builder
	sum.Write(&b, start, ch.Events())
	t.Logf("%.1fs:\n%s", time.Since(start).Seconds(), b.String())
	if got := sum.Signals["SIGKILL"]; got != 3 {
		t.Errorf("SIGKILLs recorded: got %d, want 3", got)
	}
	if sum.KillsInexact != 0 {
		t.Errorf("SIGKILLs whose victims' connections are not known for sure: got %d, want 0", sum.KillsInexact)
	}
	// A connection fails at most once: a count of killed failures above the
	// connections the victims held would be attribution gone wrong.
	if sum.Killed > sum.HeldByKilled {
		t.Errorf("failures put on killed workers: got %d, more than the %d connections they held", sum.Killed, sum.HeldByKilled)
	}
	if sum.OtherFresh != 0 {
		t.Errorf("reload/scaling failures of new connections: got %d, want 0 (%v)", sum.OtherFresh, sum.OtherClasses)
	}
	if sum.OtherReused != 0 {
		t.Errorf("reload/scaling failures of keep-alive connections: got %d, want 0 (%v)", sum.OtherReused, sum.OtherClasses)
	}
	if sum.OK < 1000 {
		t.Errorf("successful requests: got %d, want 1000 or more", sum.OK)
	}
}

// TestChaosAttribution: the connections KillWorker says the killed worker held
// are exactly the keep-alive connections that then fail; the others, on the
// other worker, are served on.
func TestChaosAttribution(t *testing.T) {
	quickExit(t)
	s := startServer(t, 2)
	port := serverPort(t, s)
	probes := make([]net.Conn, 12)
	probePort := map[uint16]int{}
	for i := range probes {
		probes[i] = dialKeepAlive(t, s.addr)
		probePort[uint16(probes[i].LocalAddr().(*net.TCPAddr).Port)] = i
	}
	// Which worker holds which probe, read before the kill.
	owner := map[int]int{} // probe → worker pid
	for _, pid := range s.readyWorkers() {
		ports, err := chaoskit.PeerPorts(pid, port)
		if err != nil {
			t.Fatal(err)
		}
		for p := range ports {
			if i, ok := probePort[p]; ok {
				owner[i] = pid
			}
		}
	}
	if len(owner) != len(probes) {
		t.Fatalf("probes found in the workers' fds: got %d, want %d", len(owner), len(probes))
	}
	victim := owner[0]
	ch, err := chaoskit.New(s.pid, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ch.KillWorker(victim)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Exact {
		t.Errorf("kill of %d: not exact", victim)
	}
	for p := range ev.Ports {
		if _, ok := probePort[p]; !ok {
			t.Errorf("the killed worker held port %d, which is no probe's", p)
		}
	}
	for i, c := range probes {
		p := uint16(c.LocalAddr().(*net.TCPAddr).Port)
		held := ev.Ports[p]
		if held != (owner[i] == victim) {
			t.Errorf("probe %d (port %d): in the kill's ports %v, but its worker %d, victim %d", i, p, held, owner[i], victim)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		switch {
		case held && err == nil:
			t.Errorf("probe %d on the killed worker: got a response, want the connection gone", i)
		case !held && err != nil:
			t.Errorf("probe %d on the live worker %d: %v", i, owner[i], err)
		}
	}
}

// TestReloadNoMasterFDLeak: 30 reloads under a load of new connections leave
// the master with the fds it had, and lose no request.
func TestReloadNoMasterFDLeak(t *testing.T) {
	quickExit(t)
	s := startServer(t, 1)
	ch, err := chaoskit.New(s.pid, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	ld := chaoskit.StartLoad(chaoskit.LoadOptions{Addr: s.addr, NewConns: 2, Gap: 2 * time.Millisecond,
		Timeout: 10 * time.Second, Body: []byte("Hello, World!")})
	t.Cleanup(ld.Stop)
	reload := func() {
		t.Helper()
		before := s.status()
		if err := ch.Signal(unix.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitReloaded(t, s, before)
	}
	reload() // whatever the first reload sets up for good
	fds := stableFDs(t, s.pid)
	start := time.Now()
	const cycles = 30
	for range cycles {
		reload()
	}
	t.Logf("%d reloads in %v", cycles, time.Since(start).Round(time.Millisecond))
	if got := stableFDs(t, s.pid); got != fds {
		t.Errorf("master fds after %d reloads: got %d, want %d", cycles, got, fds)
	}
	ld.Stop()
	if made, ok := ld.Requests(); ok == 0 || made != ok {
		t.Errorf("requests: %d made, %d ok, want all ok (failures %+v)", made, ok, ld.Failures())
	}
}
