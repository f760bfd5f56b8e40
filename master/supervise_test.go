package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// value reads a counter's or a gauge's value.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// The supervisor's policy as table tests: the Master's state machine driven
// through its events (READY and heartbeats, child exits, signals, ticks)
// against a fake env, with a fake clock and no fork. The real-process
// integration tests (integration_test.go) cover the same paths end to end.

// fakeEnv records what the supervisor asks of the OS.
type fakeEnv struct {
	now     time.Time
	nextPid int
	starts  []fakeStart
	signals []fakeSignal
	timers  []*fakeTimer
	ctls    map[int]*fakeCtl
	// failStarts makes that many next starts fail.
	failStarts int
	// rss is each worker's RSS as the master reads it (0 when unset).
	rss map[int]int64
	// jitter is what intn returns, in turn (then 0); intnArgs what it was
	// asked.
	jitter   []int
	intnArgs []int
}

type fakeStart struct {
	pid  int
	spec wire.Spec
	at   time.Time
}

type fakeSignal struct {
	pid int
	sig unix.Signal
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

// fakeCtl is a worker's control socket: it records what the master sends;
// Recv blocks until Close, as a socket whose worker says nothing.
type fakeCtl struct {
	sent    []string
	sendErr error
	once    sync.Once
	closed  chan struct{}
}

func (c *fakeCtl) Send(msg []byte, _ time.Duration) error {
	if c.sendErr != nil {
		return c.sendErr
	}
	c.sent = append(c.sent, string(msg))
	return nil
}

func (c *fakeCtl) Recv([]byte) (int, error) {
	<-c.closed
	return 0, io.EOF
}

func (c *fakeCtl) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (e *fakeEnv) env() env {
	return env{
		start: func(spec wire.Spec, _ []int, _ *Config) (int, control, error) {
			if e.failStarts > 0 {
				e.failStarts--
				return 0, nil, errors.New("fork: resource temporarily unavailable")
			}
			e.nextPid++
			pid := e.nextPid
			e.starts = append(e.starts, fakeStart{pid: pid, spec: spec, at: e.now})
			c := &fakeCtl{closed: make(chan struct{})}
			e.ctls[pid] = c
			return pid, c, nil
		},
		signal: func(pid int, sig unix.Signal) error {
			e.signals = append(e.signals, fakeSignal{pid, sig})
			return nil
		},
		now: func() time.Time { return e.now },
		afterFunc: func(d time.Duration, f func()) timer {
			t := &fakeTimer{at: e.now.Add(d), f: f}
			e.timers = append(e.timers, t)
			return t
		},
		rss: func(pid int) (int64, error) { return e.rss[pid], nil },
		intn: func(n int) int {
			e.intnArgs = append(e.intnArgs, n)
			if len(e.jitter) == 0 {
				return 0
			}
			v := e.jitter[0]
			e.jitter = e.jitter[1:]
			return v
		},
	}
}

// sup is a Master under test.
type sup struct {
	t   *testing.T
	m   *Master
	env *fakeEnv
}

const (
	testWorkerTimeout = 2 * time.Second
	testGrace         = 10 * time.Second
)

// newSup starts a Master of workers slots against a fake env; opts change
// its Config first.
func newSup(t *testing.T, workers int, opts ...func(*Config)) *sup {
	t.Helper()
	cfg := Config{
		Settings:      wire.Settings{Proto: "echo", GracefulTimeout: testGrace},
		Workers:       workers,
		Addrs:         []string{"127.0.0.1:0"},
		WorkerTimeout: testWorkerTimeout,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ls, err := cfg.listeners()
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeEnv{now: time.Unix(1_000_000, 0), nextPid: 100, ctls: map[int]*fakeCtl{}, rss: map[int]int64{}}
	m := newMaster(cfg, ls)
	m.env = fe.env()
	m.started = fe.now
	t.Cleanup(func() {
		for _, c := range fe.ctls {
			c.Close() // ends the readControl goroutines
		}
		ls.closeAll()
	})
	s := &sup{t: t, m: m, env: fe}
	m.startSlots()
	return s
}

// step hands the master one event, then the events it posted to itself.
func (s *sup) step(ev event) {
	s.t.Helper()
	s.m.step(ev)
	s.drain()
}

func (s *sup) drain() {
	for {
		select {
		case ev := <-s.m.events:
			s.m.step(ev)
		default:
			return
		}
	}
}

func (s *sup) ready(pid int) { s.step(evCtl{pid: pid, msg: wire.MsgReady}) }

// heartbeat: every live worker beats.
func (s *sup) heartbeat() {
	for pid := range s.m.procs {
		s.step(evCtl{pid: pid, msg: string(wire.Heartbeat(1, 0))})
	}
}

func (s *sup) exit(pid int, status int) { s.step(evExit{pid: pid, status: status}) }

// crash: the worker exited with status 3.
func (s *sup) crash(pid int) { s.exit(pid, 3<<8) }

// exited0: the worker exited 0 (as after STOP).
func (s *sup) exited0(pid int) { s.exit(pid, 0) }

func (s *sup) signal(sig unix.Signal) { s.step(evSignal{sig: sig}) }

// advance moves the clock on by d in 100 ms ticks, as Run's ticker would,
// firing the timers that fall due.
func (s *sup) advance(d time.Duration) {
	s.t.Helper()
	end := s.env.now.Add(d)
	for s.env.now.Before(end) {
		s.env.now = s.env.now.Add(min(100*time.Millisecond, end.Sub(s.env.now)))
		for _, t := range s.env.timers {
			if !t.stopped && !t.at.After(s.env.now) {
				t.stopped = true
				t.f()
			}
		}
		s.drain()
		s.step(evTick{})
	}
}

// cur and next are slot k's serving worker and reload replacement (0: none).
func (s *sup) cur(k int) int {
	if sl := s.m.slots[k]; sl != nil && sl.cur != nil {
		return sl.cur.pid
	}
	return 0
}

func (s *sup) next(k int) int {
	if sl := s.m.slots[k]; sl != nil && sl.next != nil {
		return sl.next.pid
	}
	return 0
}

func (s *sup) lastStart() fakeStart {
	s.t.Helper()
	if len(s.env.starts) == 0 {
		s.t.Fatal("no worker started")
	}
	return s.env.starts[len(s.env.starts)-1]
}

func (s *sup) sent(pid int) []string {
	if c := s.env.ctls[pid]; c != nil {
		return c.sent
	}
	return nil
}

func (s *sup) signalled(pid int) []unix.Signal {
	var out []unix.Signal
	for _, sg := range s.env.signals {
		if sg.pid == pid {
			out = append(out, sg.sig)
		}
	}
	return out
}

// readyAll starts with every slot's first worker READY.
func (s *sup) readyAll() {
	for k := 0; k < s.m.desired; k++ {
		s.ready(s.cur(k))
	}
	if got := s.m.readySlots(); got != s.m.desired {
		s.t.Fatalf("ready slots: got %d, want %d", got, s.m.desired)
	}
}

func (s *sup) wantStatus(prefix string) {
	s.t.Helper()
	if got := s.m.statusLine(); !strings.HasPrefix(got, prefix) {
		s.t.Errorf("status: got %q, want it to start with %q", got, prefix)
	}
}

func TestSupervisorStartSpec(t *testing.T) {
	s := newSup(t, 2)
	if len(s.env.starts) != 2 {
		t.Fatalf("starts: got %d, want 2", len(s.env.starts))
	}
	for k, st := range s.env.starts {
		sp := st.spec
		if sp.Slot != k || sp.Generation != 1 || sp.Proto != "echo" || sp.GracefulTimeout != testGrace ||
			sp.Heartbeat != testWorkerTimeout/4 || sp.Exclusive || len(sp.Listeners) != 1 {
			t.Errorf("slot %d spec: got %+v", k, sp)
		}
	}
	s.wantStatus("serving: 0/2 workers ready")
	s.readyAll()
	s.wantStatus("serving: 2/2 workers ready")
	if !s.m.readyOnce {
		t.Error("every slot ready, but READY=1 not sent (readyOnce false)")
	}
	if got := value(t, s.m.metrics.WorkersRunning); got != 2 {
		t.Errorf("prefork_workers_running: got %v, want 2", got)
	}
}

// TestSupervisorCrashBackoff: a slot that keeps crashing is restarted at
// once, then after 100 ms, 200 ms, 400 ms... (never given up); a worker
// that ran StablePeriod resets the count.
func TestSupervisorCrashBackoff(t *testing.T) {
	s := newSup(t, 1)
	s.readyAll()
	var delays []time.Duration
	for i := 0; i < 6; i++ {
		pid, crashedAt := s.cur(0), s.env.now
		s.crash(pid)
		for s.cur(0) == 0 {
			s.advance(10 * time.Millisecond)
			if s.env.now.Sub(crashedAt) > time.Minute {
				t.Fatalf("crash %d: no restart within a minute", i+1)
			}
		}
		delays = append(delays, s.lastStart().at.Sub(crashedAt).Round(10*time.Millisecond))
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond}
	if !slices.Equal(delays, want) {
		t.Errorf("restart delays: got %v, want %v", delays, want)
	}
	if got := s.m.slots[0].restarts; got != 6 {
		t.Errorf("restarts: got %d, want 6", got)
	}
	if got := value(t, s.m.metrics.Restarts.WithLabelValues(metrics.RestartExited)); got != 6 {
		t.Errorf("restarts{exited}: got %v, want 6", got)
	}
	// Generations count every start of the slot.
	if got := s.lastStart().spec.Generation; got != 7 {
		t.Errorf("generation: got %d, want 7", got)
	}

	// Stable for StablePeriod after READY: the next crash restarts at once.
	s.ready(s.cur(0))
	for waited := time.Duration(0); waited < s.m.cfg.StablePeriod; waited += time.Second {
		s.heartbeat()
		s.advance(time.Second)
	}
	before := len(s.env.starts)
	s.crash(s.cur(0))
	if len(s.env.starts) != before+1 || s.cur(0) == 0 {
		t.Errorf("crash after a stable run: got %d new starts, want 1 at once", len(s.env.starts)-before)
	}

	// Killed by a signal is counted as such.
	s.exit(s.cur(0), int(unix.SIGSEGV))
	if got := value(t, s.m.metrics.Restarts.WithLabelValues(metrics.RestartSignaled)); got != 1 {
		t.Errorf("restarts{signaled}: got %v, want 1", got)
	}
}

// TestSupervisorStartFails: a fork that fails is retried with the backoff,
// not given up and not a busy loop.
func TestSupervisorStartFails(t *testing.T) {
	s := newSup(t, 1)
	s.readyAll()
	s.env.failStarts = 3
	s.crash(s.cur(0))
	if s.cur(0) != 0 {
		t.Fatal("start failed, yet the slot has a worker")
	}
	s.advance(2 * time.Second)
	if s.cur(0) == 0 {
		t.Fatalf("no worker after 3 failed starts and 2 s (timers: %d)", len(s.env.timers))
	}
}

// TestSupervisorHung: a worker whose loop stops heartbeating gets SIGABRT
// after --worker-timeout, SIGKILL abortGrace later, and is replaced as hung.
func TestSupervisorHung(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ready    bool // said READY before it went silent
		beats    bool // keeps heartbeating (alive, never READY)
		abortsBy time.Duration
	}{
		{name: "silent after READY", ready: true, abortsBy: testWorkerTimeout + 200*time.Millisecond},
		{name: "silent, never READY", abortsBy: testWorkerTimeout + 200*time.Millisecond},
		{name: "heartbeats, never READY", beats: true, abortsBy: testWorkerTimeout + 200*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSup(t, 1)
			pid := s.cur(0)
			if tc.ready {
				s.ready(pid)
			}
			for waited := time.Duration(0); waited < tc.abortsBy; waited += 100 * time.Millisecond {
				if tc.beats {
					s.heartbeat()
				}
				s.advance(100 * time.Millisecond)
			}
			if got := s.signalled(pid); !slices.Equal(got, []unix.Signal{unix.SIGABRT}) {
				t.Fatalf("signals after %v: got %v, want [SIGABRT]", tc.abortsBy, got)
			}
			s.advance(abortGrace + 200*time.Millisecond)
			if got := s.signalled(pid); !slices.Equal(got, []unix.Signal{unix.SIGABRT, unix.SIGKILL}) {
				t.Fatalf("signals after the abort grace: got %v, want [SIGABRT SIGKILL]", got)
			}
			s.advance(time.Second)
			if got := s.signalled(pid); len(got) != 2 {
				t.Errorf("signals while its exit is on the way: got %v, want no more", got)
			}
			s.exit(pid, int(unix.SIGKILL))
			if s.cur(0) == 0 || s.cur(0) == pid {
				t.Fatalf("hung worker not replaced: slot 0 has pid %d", s.cur(0))
			}
			if got := value(t, s.m.metrics.Restarts.WithLabelValues(metrics.RestartHung)); got != 1 {
				t.Errorf("restarts{hung}: got %v, want 1", got)
			}
		})
	}
}

// TestSupervisorReload: HUP replaces slot by slot, each old worker drained
// only once its replacement is READY.
func TestSupervisorReload(t *testing.T) {
	s := newSup(t, 2)
	s.readyAll()
	old0, old1 := s.cur(0), s.cur(1)
	s.signal(unix.SIGHUP)
	s.wantStatus("reloading")
	new0 := s.next(0)
	if new0 == 0 || s.next(1) != 0 {
		t.Fatalf("after HUP: next(0)=%d next(1)=%d, want slot 0's replacement only", new0, s.next(1))
	}
	if len(s.sent(old0)) != 0 {
		t.Fatalf("old worker told %v before its replacement is ready", s.sent(old0))
	}
	s.ready(new0)
	if s.cur(0) != new0 || !slices.Equal(s.sent(old0), []string{wire.MsgStop}) {
		t.Fatalf("slot 0 after READY: cur %d (want %d), old got %v (want STOP)", s.cur(0), new0, s.sent(old0))
	}
	new1 := s.next(1)
	if new1 == 0 {
		t.Fatal("slot 1's replacement not started after slot 0's was ready")
	}
	s.exited0(old0)
	s.ready(new1)
	s.exited0(old1)
	if s.cur(1) != new1 || !slices.Equal(s.sent(old1), []string{wire.MsgStop}) {
		t.Fatalf("slot 1: cur %d (want %d), old got %v", s.cur(1), new1, s.sent(old1))
	}
	s.wantStatus("serving: 2/2")
	if got := s.m.slots[0].restarts + s.m.slots[1].restarts; got != 0 {
		t.Errorf("a reload counted %d restarts", got)
	}
	if g := s.lastStart().spec.Generation; g != 2 {
		t.Errorf("generation after one reload: got %d, want 2", g)
	}
}

// TestSupervisorReloadFaults: crashes, a TTOU and a second HUP while a
// rolling reload is in flight; the reload always finishes, no slot is left
// without a worker, and no extra worker is started.
func TestSupervisorReloadFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fault runs with slot 0's replacement (repl) starting, old its
		// predecessor.
		fault      func(s *sup, old, repl int)
		wantSlots  int
		extraStart int // starts beyond one per slot replaced
	}{
		{
			name: "replacement dies before READY: old kept, reload goes on",
			fault: func(s *sup, old, repl int) {
				s.crash(repl)
				if s.cur(0) != old {
					s.t.Fatalf("slot 0: cur %d, want the old %d kept", s.cur(0), old)
				}
			},
			wantSlots: 2,
		},
		{
			name: "old worker crashes: its replacement takes the slot, no extra restart",
			fault: func(s *sup, old, repl int) {
				s.crash(old)
				if s.cur(0) != repl {
					s.t.Fatalf("slot 0: cur %d, want the replacement %d", s.cur(0), repl)
				}
				s.ready(repl)
			},
			wantSlots: 2,
		},
		{
			name: "old crashes, then its replacement dies before READY: the slot restarts",
			fault: func(s *sup, old, repl int) {
				s.crash(old)
				s.crash(repl)
				if s.cur(0) == 0 {
					s.t.Fatal("slot 0 left without a worker")
				}
				s.ready(s.cur(0))
			},
			wantSlots:  2,
			extraStart: 1,
		},
		{
			name: "TTOU retires the slot being reloaded",
			fault: func(s *sup, old, repl int) {
				s.signal(unix.SIGTTOU) // retires slot 1, the highest
				s.ready(repl)
			},
			wantSlots: 1,
		},
		{
			name: "HUP again: starts over after the replacement in flight",
			fault: func(s *sup, old, repl int) {
				s.signal(unix.SIGHUP)
				if s.next(0) != repl {
					s.t.Fatalf("second HUP replaced the replacement in flight")
				}
				s.ready(repl)
			},
			wantSlots: 2,
			// The second reload supersedes the first: slot 0 is replaced
			// once more, slot 1 once.
			extraStart: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSup(t, 2)
			s.readyAll()
			s.signal(unix.SIGHUP)
			old, repl := s.cur(0), s.next(0)
			startsBefore := len(s.env.starts)
			tc.fault(s, old, repl)
			// Let every replacement still starting become READY, and every
			// worker told to stop exit, until the reload is done.
			for i := 0; i < 20 && (len(s.m.reloadQueue) > 0 || s.m.reloadBusy()); i++ {
				for k, sl := range s.m.slots {
					if sl.next != nil {
						s.ready(sl.next.pid)
					} else if sl.cur != nil && sl.cur.state == stateStarting {
						s.ready(s.cur(k))
					}
				}
			}
			if len(s.m.reloadQueue) > 0 || s.m.reloadBusy() {
				t.Fatalf("reload never finished: queue %v", s.m.reloadQueue)
			}
			s.wantStatus(fmt.Sprintf("serving: %d/%d", tc.wantSlots, tc.wantSlots))
			if got := len(s.m.slots); got != tc.wantSlots {
				t.Errorf("slots: got %d, want %d", got, tc.wantSlots)
			}
			replaced := 0
			for _, sl := range s.m.slots {
				if sl.cur == nil || sl.cur.state != stateReady {
					t.Errorf("slot %d has no ready worker", sl.index)
				}
				replaced++
			}
			// Slot 0 was replaced once whatever happened (repl counted in
			// startsBefore); the other remaining slots once each.
			want := replaced - 1 + tc.extraStart
			if got := len(s.env.starts) - startsBefore; got != want {
				t.Errorf("starts after the fault: got %d, want %d", got, want)
			}
		})
	}
}

// TestSupervisorScale: every desired/actual transition of TTIN and TTOU.
func TestSupervisorScale(t *testing.T) {
	t.Run("TTIN adds slot N with its own sockets", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		s.signal(unix.SIGTTIN)
		if s.m.desired != 2 || s.cur(1) == 0 || s.lastStart().spec.Slot != 1 {
			t.Fatalf("after TTIN: desired %d, slot 1 pid %d", s.m.desired, s.cur(1))
		}
		if len(s.m.ls.slots[1]) != 1 {
			t.Errorf("slot 1 sockets: got %v, want one per address", s.m.ls.slots[1])
		}
		s.wantStatus("serving: 1/2")
		s.ready(s.cur(1))
		s.wantStatus("serving: 2/2")
	})
	t.Run("TTOU retires the highest slot, sockets closed when it exits", func(t *testing.T) {
		s := newSup(t, 3)
		s.readyAll()
		pid := s.cur(2)
		fd := s.m.ls.slots[2][0]
		s.signal(unix.SIGTTOU)
		if s.m.desired != 2 || s.m.slots[2] != nil || !slices.Equal(s.sent(pid), []string{wire.MsgRetire}) {
			t.Fatalf("after TTOU: desired %d, slot 2 %v, sent %v", s.m.desired, s.m.slots[2], s.sent(pid))
		}
		s.wantStatus("serving: 2/2")
		if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
			t.Fatalf("retiring slot's socket closed before its worker drained it: %v", err)
		}
		s.exited0(pid)
		if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != unix.EBADF {
			t.Errorf("retired slot's socket after its worker exited: got %v, want EBADF (closed)", err)
		}
		if got := s.m.slots[0].restarts + s.m.slots[1].restarts; got != 0 {
			t.Errorf("retiring counted %d restarts", got)
		}
	})
	t.Run("TTOU at one worker is refused", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		s.signal(unix.SIGTTOU)
		if s.m.desired != 1 || s.cur(0) == 0 || len(s.sent(s.cur(0))) != 0 {
			t.Errorf("TTOU at 1: desired %d, sent %v", s.m.desired, s.sent(s.cur(0)))
		}
	})
	t.Run("TTOU of a slot waiting out its backoff", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		s.crash(s.cur(1)) // restarted at once
		s.crash(s.cur(1)) // now backing off
		if s.cur(1) != 0 || s.m.slots[1].restartTimer == nil {
			t.Fatalf("slot 1 should be waiting: cur %d", s.cur(1))
		}
		starts := len(s.env.starts)
		s.signal(unix.SIGTTOU)
		// Its socket may hold queued connections: a worker is started at
		// once to take them, and told to retire.
		if got := len(s.env.starts) - starts; got != 1 || s.lastStart().spec.Slot != 1 {
			t.Fatalf("after TTOU of a slot in backoff: %d new starts, want 1 for slot 1", got)
		}
		drainer := s.lastStart().pid
		if got := s.sent(drainer); !slices.Contains(got, wire.MsgRetire) {
			t.Errorf("the slot's new worker got %q, want RETIRE", got)
		}
		s.ready(drainer)
		s.exited0(drainer)
		s.advance(time.Second)
		if len(s.env.starts) != starts+1 || s.m.slots[1] != nil {
			t.Errorf("retired slot restarted: %d new starts, want only the one that took its queue", len(s.env.starts)-starts)
		}
		s.wantStatus("serving: 1/1")
	})
	t.Run("TTIN after TTOU reuses the slot number", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		s.signal(unix.SIGTTOU)
		s.signal(unix.SIGTTIN)
		if s.m.desired != 2 || s.lastStart().spec.Slot != 1 {
			t.Errorf("desired %d, last start slot %d; want 2 and slot 1", s.m.desired, s.lastStart().spec.Slot)
		}
	})
	t.Run("TTIN and TTOU during a stop are ignored", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		s.signal(unix.SIGTERM)
		starts := len(s.env.starts)
		s.signal(unix.SIGTTIN)
		s.signal(unix.SIGTTOU)
		if s.m.desired != 2 || len(s.env.starts) != starts {
			t.Errorf("desired %d, %d new starts", s.m.desired, len(s.env.starts)-starts)
		}
	})
}

// TestSupervisorStop: TERM drains, INT cuts; a worker that hangs or
// overstays its drain is killed; the master is done when the last exits.
func TestSupervisorStop(t *testing.T) {
	t.Run("TERM: STOP to all, done when all exited", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		a, b := s.cur(0), s.cur(1)
		s.signal(unix.SIGTERM)
		for _, pid := range []int{a, b} {
			if !slices.Equal(s.sent(pid), []string{wire.MsgStop}) {
				t.Errorf("pid %d got %v, want STOP", pid, s.sent(pid))
			}
		}
		s.wantStatus("stopping")
		if s.m.step(evExit{pid: a}) {
			t.Fatal("done with a worker still draining")
		}
		if !s.m.step(evExit{pid: b}) {
			t.Fatal("not done with every worker gone")
		}
		if n := len(s.env.starts); n != 2 {
			t.Errorf("a stop started %d workers", n-2)
		}
	})
	t.Run("a worker overstaying the graceful timeout is killed", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		pid := s.cur(0)
		s.signal(unix.SIGTERM)
		for waited := time.Duration(0); waited < testGrace+stopSlack; waited += 500 * time.Millisecond {
			s.heartbeat() // draining, alive
			s.advance(500 * time.Millisecond)
		}
		if len(s.signalled(pid)) != 0 {
			t.Fatalf("killed before its deadline: %v", s.signalled(pid))
		}
		s.heartbeat()
		s.advance(500 * time.Millisecond)
		if got := s.signalled(pid); !slices.Equal(got, []unix.Signal{unix.SIGKILL}) {
			t.Fatalf("after the deadline: got %v, want [SIGKILL]", got)
		}
	})
	t.Run("a worker that hangs while draining is aborted", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		pid := s.cur(0)
		s.signal(unix.SIGTERM)
		s.advance(testWorkerTimeout + abortGrace + time.Second) // silent
		if got := s.signalled(pid); !slices.Equal(got, []unix.Signal{unix.SIGABRT, unix.SIGKILL}) {
			t.Fatalf("hung while draining: got %v, want [SIGABRT SIGKILL]", got)
		}
		if !s.m.step(evExit{pid: pid, status: int(unix.SIGKILL)}) {
			t.Fatal("not done after the hung worker exited")
		}
		if len(s.env.starts) != 1 {
			t.Error("a worker that died during a stop was restarted")
		}
	})
	t.Run("INT after TERM turns the drain into a fast stop", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		pid := s.cur(0)
		s.signal(unix.SIGTERM)
		s.signal(unix.SIGINT)
		if !slices.Equal(s.sent(pid), []string{wire.MsgStop, wire.MsgQuit}) {
			t.Errorf("got %v, want STOP then QUIT", s.sent(pid))
		}
	})
	t.Run("TERM during backoff: no restart", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		s.crash(s.cur(0))
		s.crash(s.cur(0))
		starts := len(s.env.starts)
		s.signal(unix.SIGTERM)
		s.advance(time.Second)
		if len(s.env.starts) != starts {
			t.Error("restarted during a stop")
		}
		if len(s.m.procs) != 0 {
			t.Errorf("procs left: %d", len(s.m.procs))
		}
	})
	t.Run("control socket broken: signalled instead", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		pid := s.cur(0)
		s.env.ctls[pid].sendErr = errors.New("write: broken pipe")
		s.signal(unix.SIGTERM)
		if got := s.signalled(pid); !slices.Equal(got, []unix.Signal{unix.SIGTERM}) {
			t.Errorf("got %v, want [SIGTERM]", got)
		}
	})
}

// beat: worker pid heartbeats with requests served so far.
func (s *sup) beat(pid int, requests uint64) {
	s.step(evCtl{pid: pid, msg: string(wire.Heartbeat(1, requests))})
}

// beatAll: every live worker heartbeats with requests served so far.
func (s *sup) beatAll(requests uint64) {
	for pid := range s.m.procs {
		s.beat(pid, requests)
	}
}

func maxRequests(n, jitter int) func(*Config) {
	return func(c *Config) { c.MaxRequests, c.MaxRequestsJitter = n, jitter }
}

func maxRSS(n int64) func(*Config) { return func(c *Config) { c.MaxWorkerRSS = n } }

// recycled is prefork_worker_restarts_total{reason}.
func (s *sup) restarts(reason string) float64 {
	return value(s.t, s.m.metrics.Restarts.WithLabelValues(reason))
}

// TestSupervisorRecycle: --max-requests (+ jitter) and --max-worker-rss
// replace a worker as a reload does (replacement READY first, then STOP to
// the old one), without being taken for a reload, and never while the slot
// has a replacement starting, a reload is about to replace it, or the master
// stops.
func TestSupervisorRecycle(t *testing.T) {
	// wantRecycled checks that slot k's worker old was replaced by repl: repl
	// serves, old got exactly STOP, no restart was counted for the slot, and
	// nothing looks like a reload.
	wantRecycled := func(s *sup, k, old, repl int) {
		s.t.Helper()
		if s.cur(k) != repl || s.next(k) != 0 {
			s.t.Fatalf("slot %d: cur %d next %d, want cur %d (the replacement), no next", k, s.cur(k), s.next(k), repl)
		}
		if got := s.sent(old); !slices.Equal(got, []string{wire.MsgStop}) {
			s.t.Fatalf("recycled worker %d got %v, want [STOP]", old, got)
		}
		if got := s.m.slots[k].restarts; got != 0 {
			s.t.Errorf("slot %d restarts (crashes): got %d, want 0", k, got)
		}
		if s.m.reloads != 0 || s.m.reloadBusy() || len(s.m.reloadQueue) != 0 {
			s.t.Errorf("a recycle looks like a reload: reloads %d, busy %v, queue %v", s.m.reloads, s.m.reloadBusy(), s.m.reloadQueue)
		}
	}

	t.Run("request limit: replacement first, old drained once it is READY", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(0)
		s.beat(old, 99)
		if s.next(0) != 0 {
			t.Fatal("recycled below its limit")
		}
		s.beat(old, 100)
		repl := s.next(0)
		if repl == 0 || s.lastStart().spec.Slot != 0 || s.lastStart().spec.Generation != 2 {
			t.Fatalf("at the limit: next %d, last start %+v; want slot 0's generation 2", repl, s.lastStart().spec)
		}
		if len(s.sent(old)) != 0 {
			t.Fatalf("old worker told %v before its replacement is ready", s.sent(old))
		}
		s.wantStatus("serving: 2/2") // not "reloading"
		s.beat(old, 150)             // over the limit, replacement starting: no second one
		if s.next(0) != repl || len(s.env.starts) != 3 {
			t.Fatalf("second replacement started: next %d, %d starts", s.next(0), len(s.env.starts))
		}
		s.ready(repl)
		wantRecycled(s, 0, old, repl)
		if got := s.restarts(metrics.RestartMaxRequests); got != 1 {
			t.Errorf("restarts{max_requests}: got %v, want 1", got)
		}
		// The old one, draining, over its limit: left alone.
		s.beat(old, 500)
		s.exited0(old)
		if len(s.env.starts) != 3 || s.cur(0) != repl {
			t.Errorf("after the old worker drained: %d starts, cur %d; want 3, %d", len(s.env.starts), s.cur(0), repl)
		}
		if got := s.restarts(metrics.RestartExited); got != 0 {
			t.Errorf("the drained worker's exit counted as a crash: restarts{exited} %v", got)
		}
		// The replacement counts from its own start.
		s.beat(repl, 99)
		if s.next(0) != 0 {
			t.Error("the replacement was recycled below its own limit")
		}
	})

	t.Run("jitter: each worker's limit drawn in N..N+J, so they recycle apart", func(t *testing.T) {
		s := newSup(t, 4, maxRequests(100, 50))
		s.readyAll()
		if !slices.Equal(s.env.intnArgs, []int{51, 51, 51, 51}) {
			t.Fatalf("intn asked %v, want 51 (0..50) once per worker", s.env.intnArgs)
		}
		// A reload starts workers whose jitter is 0, 20, 40, 50.
		s.env.jitter = []int{0, 20, 40, 50}
		s.signal(unix.SIGHUP)
		for k := 0; k < 4; k++ {
			old := s.cur(k)
			s.ready(s.next(k))
			s.exited0(old)
		}
		var limits []int64
		for k := 0; k < 4; k++ {
			limits = append(limits, s.m.slots[k].cur.maxRequests)
		}
		if !slices.Equal(limits, []int64{100, 120, 140, 150}) {
			t.Fatalf("limits: got %v, want [100 120 140 150]", limits)
		}
		for k := 0; k < 4; k++ { // in slot order
			s.beat(s.cur(k), 120)
		}
		var recycling []int
		for k := 0; k < 4; k++ {
			if s.next(k) != 0 {
				recycling = append(recycling, k)
			}
		}
		// Slots 0 and 1 are at their limits: one recycle at a time, so
		// slot 0 first, slot 1 once slot 0's replacement serves.
		if !slices.Equal(recycling, []int{0}) {
			t.Fatalf("at 120 requests each: slots %v recycling, want [0] (one at a time)", recycling)
		}
		// Slot 1 reported its limit while slot 0's recycle was in flight:
		// it goes as soon as that one is done, without waiting for a beat.
		s.ready(s.next(0))
		if s.next(1) == 0 || s.next(2) != 0 || s.next(3) != 0 {
			t.Fatalf("after slot 0's recycle: next %d %d %d, want slot 1 only recycling", s.next(1), s.next(2), s.next(3))
		}
		// The real draw: every limit in range, both ends reached.
		m := newSup(t, 1, maxRequests(100, 50)).m
		m.env.intn = rand.IntN
		lo, hi := int64(1<<62), int64(0)
		for range 2000 {
			n := m.requestLimit()
			lo, hi = min(lo, n), max(hi, n)
		}
		if lo != 100 || hi != 150 {
			t.Errorf("2000 drawn limits span %d..%d, want 100..150", lo, hi)
		}
		if got := newSup(t, 1).m.requestLimit(); got != 0 {
			t.Errorf("limit without --max-requests: got %d, want 0 (off)", got)
		}
	})

	t.Run("rss limit below a fresh worker's RSS: no recycle loop", func(t *testing.T) {
		s := newSup(t, 2, maxRSS(10<<20))
		for k := 0; k < 2; k++ {
			s.env.rss[s.cur(k)] = 20 << 20 // past the limit before serving anything
		}
		s.readyAll()
		s.beatAll(1)
		s.beatAll(2)
		if s.next(0) != 0 || s.next(1) != 0 {
			t.Fatalf("workers past the limit at READY recycled: next %d %d", s.next(0), s.next(1))
		}
		if !s.m.rssWarned {
			t.Error("the too-low limit was not said")
		}
	})

	t.Run("rss limit: checked at each heartbeat", func(t *testing.T) {
		s := newSup(t, 1, maxRSS(100<<20))
		s.readyAll()
		old := s.cur(0)
		s.env.rss[old] = 100 << 20 // at the limit, not past it
		s.beat(old, 1_000_000)     // no request limit set
		if s.next(0) != 0 {
			t.Fatal("recycled at (not past) the RSS limit, or by requests without --max-requests")
		}
		s.env.rss[old] = 150 << 20
		s.beat(old, 1_000_001)
		repl := s.next(0)
		if repl == 0 {
			t.Fatal("RSS past the limit: no replacement")
		}
		s.ready(repl)
		wantRecycled(s, 0, old, repl)
		if got, other := s.restarts(metrics.RestartMaxRSS), s.restarts(metrics.RestartMaxRequests); got != 1 || other != 0 {
			t.Errorf("restarts{max_rss}: got %v, want 1 (max_requests %v, want 0)", got, other)
		}
	})

	t.Run("replacement dies before READY: old kept, retried after a hold-off that grows", func(t *testing.T) {
		s := newSup(t, 1, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(0)
		// fail lets the replacement now starting die before READY.
		fail := func() time.Time {
			t.Helper()
			repl := s.next(0)
			if repl == 0 {
				t.Fatal("no replacement starting")
			}
			s.crash(repl)
			if s.cur(0) != old || s.next(0) != 0 || len(s.sent(old)) != 0 {
				t.Fatalf("replacement died: cur %d next %d, old got %v; want the old %d kept, untold", s.cur(0), s.next(0), s.sent(old), old)
			}
			return s.env.now
		}
		// retryAfter: heartbeats over the limit every 500 ms until a new
		// replacement starts; how long after the failure it did.
		retryAfter := func(failedAt time.Time) time.Duration {
			t.Helper()
			for s.next(0) == 0 {
				s.advance(500 * time.Millisecond)
				s.beat(old, 100)
				if s.env.now.Sub(failedAt) > time.Minute {
					t.Fatal("no retry within a minute")
				}
			}
			return s.lastStart().at.Sub(failedAt)
		}
		s.beat(old, 100)
		if got := retryAfter(fail()); got != recycleRetry {
			t.Errorf("first retry after %v, want %v", got, recycleRetry)
		}
		if got := retryAfter(fail()); got != 2*recycleRetry {
			t.Errorf("second retry after %v, want %v", got, 2*recycleRetry)
		}
		if got := s.restarts(metrics.RestartExited) + s.restarts(metrics.RestartMaxRequests); got != 0 {
			t.Errorf("failed recycles counted as restarts: %v", got)
		}
		repl := s.next(0)
		s.ready(repl)
		wantRecycled(s, 0, old, repl)
		if s.m.slots[0].recycleFails != 0 {
			t.Errorf("failures after a successful recycle: got %d, want 0", s.m.slots[0].recycleFails)
		}
	})

	t.Run("during a reload: no recycle of a slot the reload will replace", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		s.signal(unix.SIGHUP) // slot 0's replacement starting, slot 1 queued
		starts := len(s.env.starts)
		s.beat(s.cur(1), 100)
		s.beat(s.cur(0), 100) // slot 0 has its reload's replacement starting
		if len(s.env.starts) != starts {
			t.Fatalf("recycles started during the reload: %d", len(s.env.starts)-starts)
		}
		// Slot 0 reloaded; slot 1's replacement starting: slot 0's new
		// worker may be recycled, and the reload still ends as one.
		new0 := s.next(0)
		s.ready(new0)
		s.beat(new0, 100)
		rec := s.next(0)
		if rec == 0 {
			t.Fatal("a worker the reload has started is not recycled at its limit")
		}
		s.ready(s.next(1))
		if len(s.m.reloadQueue) != 0 || s.m.reloadBusy() {
			t.Fatalf("reload not done with only a recycle in flight: queue %v busy %v", s.m.reloadQueue, s.m.reloadBusy())
		}
		s.wantStatus("serving: 2/2")
		s.ready(rec)
		if s.cur(0) != rec || !slices.Equal(s.sent(new0), []string{wire.MsgStop}) {
			t.Errorf("slot 0: cur %d (want %d), recycled worker got %v", s.cur(0), rec, s.sent(new0))
		}
	})

	t.Run("HUP during a recycle: the reload waits for it, then replaces it too", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(0)
		s.beat(old, 100)
		rec := s.next(0)
		s.signal(unix.SIGHUP)
		if s.next(0) != rec || s.next(1) != 0 || len(s.sent(old)) != 0 {
			t.Fatalf("HUP during a recycle: next(0) %d (want %d), next(1) %d (want none yet), old got %v",
				s.next(0), rec, s.next(1), s.sent(old))
		}
		s.wantStatus("reloading")
		s.ready(rec)
		if s.cur(0) != rec || !slices.Equal(s.sent(old), []string{wire.MsgStop}) {
			t.Fatalf("recycle's replacement ready: cur %d (want %d), old got %v", s.cur(0), rec, s.sent(old))
		}
		// Started before the HUP: the reload replaces it as well.
		rel := s.next(0)
		if rel == 0 || !s.m.slots[0].next.reload {
			t.Fatal("the reload did not go on with slot 0 after the recycle")
		}
		s.ready(rel)
		s.ready(s.next(1))
		if len(s.m.reloadQueue) != 0 || s.m.reloadBusy() {
			t.Fatalf("reload never finished: queue %v", s.m.reloadQueue)
		}
		if !slices.Equal(s.sent(rec), []string{wire.MsgStop}) {
			t.Errorf("the recycle's replacement after the reload got %v, want STOP", s.sent(rec))
		}
		if got := s.restarts(metrics.RestartMaxRequests); got != 1 {
			t.Errorf("restarts{max_requests}: got %v, want 1", got)
		}
	})

	t.Run("HUP during a recycle whose replacement dies: the reload goes on", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(0)
		s.beat(old, 100)
		s.signal(unix.SIGHUP)
		s.crash(s.next(0))
		if s.cur(0) != old || s.next(0) == 0 || !s.m.slots[0].next.reload {
			t.Fatalf("after the recycle failed: cur %d (want %d), next %d; want the reload's replacement", s.cur(0), old, s.next(0))
		}
	})

	t.Run("during a stop: no recycle; one in flight stops too", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		s.beat(s.cur(0), 100)
		rec := s.next(0)
		s.signal(unix.SIGTERM)
		starts := len(s.env.starts)
		s.beat(s.cur(1), 100)
		if len(s.env.starts) != starts {
			t.Fatal("recycle started during a stop")
		}
		if !slices.Equal(s.sent(rec), []string{wire.MsgStop}) {
			t.Fatalf("recycle's replacement got %v at the stop, want STOP", s.sent(rec))
		}
		s.ready(rec) // READY after STOP changes nothing
		for _, pid := range []int{s.cur(0), s.cur(1)} {
			s.exited0(pid)
		}
		if !s.m.step(evExit{pid: rec}) {
			t.Fatal("not done with every worker gone")
		}
		if len(s.env.starts) != starts {
			t.Error("a worker started during the stop")
		}
	})

	t.Run("old worker crashes during the recycle: the replacement takes the slot, a crash not a recycle", func(t *testing.T) {
		s := newSup(t, 1, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(0)
		s.beat(old, 100)
		rec := s.next(0)
		starts := len(s.env.starts)
		s.crash(old)
		if s.cur(0) != rec || len(s.env.starts) != starts {
			t.Fatalf("slot 0: cur %d (want %d), %d new starts (want 0)", s.cur(0), rec, len(s.env.starts)-starts)
		}
		s.ready(rec)
		if got, rec := s.restarts(metrics.RestartExited), s.restarts(metrics.RestartMaxRequests); got != 1 || rec != 0 {
			t.Errorf("restarts: exited %v (want 1), max_requests %v (want 0)", got, rec)
		}
		s.wantStatus("serving: 1/1")
	})

	t.Run("TTOU retires the slot being recycled: both workers retire", func(t *testing.T) {
		s := newSup(t, 2, maxRequests(100, 0))
		s.readyAll()
		old := s.cur(1)
		s.beat(old, 100)
		rec := s.next(1)
		s.signal(unix.SIGTTOU)
		for _, pid := range []int{old, rec} {
			if !slices.Equal(s.sent(pid), []string{wire.MsgRetire}) {
				t.Errorf("pid %d got %v, want RETIRE", pid, s.sent(pid))
			}
		}
		s.ready(rec)
		s.exited0(old)
		s.exited0(rec)
		if s.m.slots[1] != nil || len(s.env.starts) != 3 {
			t.Errorf("retired slot: %v, %d starts (want 3)", s.m.slots[1], len(s.env.starts))
		}
		s.wantStatus("serving: 1/1")
	})

	t.Run("a worker of an older binary (HB <conns>) is not recycled by requests", func(t *testing.T) {
		s := newSup(t, 1, maxRequests(100, 0))
		s.readyAll()
		s.step(evCtl{pid: s.cur(0), msg: "HB 3"})
		if s.next(0) != 0 || s.m.slots[0].cur.conns != 3 || s.m.slots[0].cur.requests != -1 {
			t.Errorf("old heartbeat: next %d, conns %d, requests %d; want none, 3, -1", s.next(0),
				s.m.slots[0].cur.conns, s.m.slots[0].cur.requests)
		}
	})

	t.Run("off by default", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		s.env.rss[s.cur(0)] = 1 << 40
		s.beat(s.cur(0), 1<<40)
		if s.next(0) != 0 {
			t.Error("recycled with neither --max-requests nor --max-worker-rss")
		}
	})
}

// TestSupervisorScaleTo: the admin "scale N" sets the count and is answered
// once it is reached (new slots READY, retired workers exited), at once when
// it is already, with an error when superseded, at its deadline, or at a
// stop.
func TestSupervisorScaleTo(t *testing.T) {
	scaleTo := func(s *sup, n int, within time.Duration) chan adminReply {
		reply := make(chan adminReply, 1)
		s.step(evScale{n: n, deadline: s.env.now.Add(within), reply: reply})
		return reply
	}
	answered := func(t *testing.T, reply chan adminReply) (Status, bool, error) {
		t.Helper()
		select {
		case r := <-reply:
			var st Status
			if r.err == nil {
				if err := json.Unmarshal(r.body, &st); err != nil {
					t.Fatal(err)
				}
			}
			return st, true, r.err
		default:
			return Status{}, false, nil
		}
	}
	t.Run("up, idempotent, down", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		r := scaleTo(s, 4, time.Minute)
		if s.m.desired != 4 || s.cur(2) == 0 || s.cur(3) == 0 {
			t.Fatalf("scale 4: desired %d, slots 2, 3: %d, %d", s.m.desired, s.cur(2), s.cur(3))
		}
		s.ready(s.cur(2))
		if _, ok, _ := answered(t, r); ok {
			t.Fatal("answered with 3 of 4 ready")
		}
		s.ready(s.cur(3))
		st, ok, err := answered(t, r)
		if !ok || err != nil || st.Desired != 4 || st.Running != 4 {
			t.Fatalf("scale 4 with 4 ready: answered %v, %v, desired %d running %d", ok, err, st.Desired, st.Running)
		}
		starts := len(s.env.starts)
		if st, ok, err := answered(t, scaleTo(s, 4, time.Minute)); !ok || err != nil || st.Running != 4 || len(s.env.starts) != starts {
			t.Fatalf("scale 4 again: answered %v, %v, running %d, %d new starts; want at once, nothing started", ok, err, st.Running, len(s.env.starts)-starts)
		}
		retiring := []int{s.cur(1), s.cur(2), s.cur(3)}
		r = scaleTo(s, 1, time.Minute)
		for i, pid := range retiring {
			if !slices.Equal(s.sent(pid), []string{wire.MsgRetire}) {
				t.Errorf("pid %d got %v, want RETIRE", pid, s.sent(pid))
			}
			if _, ok, _ := answered(t, r); ok {
				t.Fatalf("scale 1 answered with %d retiring workers still running", len(retiring)-i)
			}
			s.exited0(pid)
		}
		st, ok, err = answered(t, r)
		if !ok || err != nil || st.Desired != 1 || st.Running != 1 || len(st.Workers) != 1 {
			t.Fatalf("scale 1 done: answered %v, %v, %+v", ok, err, st)
		}
	})
	t.Run("not reached in time", func(t *testing.T) {
		s := newSup(t, 1)
		s.readyAll()
		r := scaleTo(s, 2, time.Second)
		for i := 0; i < 5; i++ {
			s.heartbeat()
			s.advance(500 * time.Millisecond)
		}
		if _, ok, err := answered(t, r); !ok || err == nil || !strings.Contains(err.Error(), "1 of 2 workers ready") {
			t.Fatalf("past the deadline: answered %v, %v; want an error saying 1 of 2 ready", ok, err)
		}
	})
	t.Run("superseded by a TTOU, refused during a stop", func(t *testing.T) {
		s := newSup(t, 2)
		s.readyAll()
		r := scaleTo(s, 3, time.Minute)
		s.signal(unix.SIGTTOU)
		if _, ok, err := answered(t, r); !ok || err == nil || !strings.Contains(err.Error(), "superseded") {
			t.Fatalf("after TTOU: answered %v, %v; want superseded", ok, err)
		}
		s.signal(unix.SIGTERM)
		if _, ok, err := answered(t, scaleTo(s, 5, time.Minute)); !ok || err == nil || s.m.desired == 5 {
			t.Fatalf("during a stop: answered %v, %v, desired %d; want an error, nothing changed", ok, err, s.m.desired)
		}
	})
	t.Run("parse", func(t *testing.T) {
		for _, tc := range []struct {
			cmd     string
			n       int
			timeout time.Duration
			scale   bool
			err     string
		}{
			{"scale 3", 3, DefaultScaleTimeout, true, ""},
			{"scale 3 1m30s", 3, 90 * time.Second, true, ""},
			{"scale 3 100h", 3, maxScaleWait, true, ""},
			{"scale 0", 0, 0, true, `N "0"`},
			{"scale -2", 0, 0, true, `N "-2"`},
			{"scale two", 0, 0, true, `N "two"`},
			{"scale", 0, 0, true, "scale N"},
			{"scale 2 soon", 0, 0, true, `TIMEOUT "soon"`},
			{"scale 2 1s 3", 0, 0, true, "scale N"},
			{"status", 0, 0, false, ""},
			{"scaled 2", 0, 0, false, ""},
		} {
			n, timeout, isScale, err := parseScale(tc.cmd)
			if n != tc.n || timeout != tc.timeout || isScale != tc.scale || (err == nil) != (tc.err == "") ||
				(err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("parseScale(%q): got %d, %v, %v, %v; want %d, %v, %v, error with %q",
					tc.cmd, n, timeout, isScale, err, tc.n, tc.timeout, tc.scale, tc.err)
			}
		}
	})
}
