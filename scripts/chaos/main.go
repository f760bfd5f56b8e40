// Command chaos puts `prefork serve` through worker crashes, reloads and
// scaling under load, and counts what the clients saw (part of the product
// module; the engine is package chaoskit, which the master's chaos test uses
// too).
//
//	go run ./scripts/chaos                               # 60 s, 2 workers, reuseport
//	go run ./scripts/chaos -workers 4 -mode shared
//	go run ./scripts/chaos -leak 1000                    # the leak check
//
// It builds prefork from this module (or runs -bin), starts `prefork serve
// --proto http --listen 127.0.0.1:0` with -workers workers, a pidfile (for the
// admin socket) and JSON logs in a temporary directory, and waits for every
// worker to be ready.
//
// Chaos run (the default): for -duration it keeps a load on the server
// (-new goroutines making one request per new connection, -keepalive
// goroutines holding keep-alive connections of -per-conn requests each, a
// mean pause of -gap between two requests of one goroutine) while, in random
// order and at random gaps (each uniform in [½, 1½] of its mean, flags
// -kill-every, -hup-every, -ttin-every, -ttou-every; 0 disables one), it
// SIGKILLs a random worker (a child of the master's PID in /proc), and sends
// the master HUP, TTIN and TTOU, keeping the number of workers between 1 and
// -max-workers (TTIN and TTOU that would leave it are skipped). Then it waits
// for every worker to be ready again, stops the load and the server (TERM),
// and prints the requests made and failed, the failures on the killed
// workers' own connections (see package chaoskit for how that is known
// exactly), and every other failure: "reload, keep-alive" (a request on a
// keep-alive connection that had been answered before) and "reload, new
// connection" (the first request of a connection, its dial included), with
// how many of the latter had a SIGKILL between a second before their dial
// and their failure (connections queued when a worker died: the master keeps
// each slot's socket, so its queue waits for the replacement — through the
// slot's crash backoff, which -timeout may not outlast; the max latency and
// the longest backoff in the server's log show it). The SIGKILLed workers
// are stopped (SIGSTOP) for a moment first, while their connections are
// read; the report gives the longest such stop. It exits 1 if any request failed
// other than on a killed worker's connection: the target is 0.
//
// Leak check (-leak N): under a light load (one new-connection goroutine,
// two keep-alive ones, 20 ms mean gaps) it runs -leak-warmup HUP reloads,
// then measures the master and each worker (fd count from /proc/PID/fd,
// VmRSS from /proc/PID/status) with the load stopped and every worker
// holding no connection; runs N HUP reloads, each waited for (the admin
// socket's status: the reload counted, every slot's worker of a newer
// generation and ready, no other worker left, and no other child of the
// master); measures again; and exits 1 if the master or a worker slot grew
// beyond the tolerances (-leak-fds, -leak-rss).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/chaoskit"
	"github.com/prefork/prefork/master"
)

type options struct {
	bin        string
	workers    int
	maxWorkers int
	mode       string
	duration   time.Duration
	killEvery  time.Duration
	hupEvery   time.Duration
	ttinEvery  time.Duration
	ttouEvery  time.Duration
	newConns   int
	keepAlive  int
	perConn    int
	gap        time.Duration
	timeout    time.Duration
	leak       int
	leakWarmup int
	leakFDs    int
	leakRSS    int64 // bytes
	keep       bool
	verbose    bool
}

func main() {
	var o options
	var leakRSSKiB int64
	flag.StringVar(&o.bin, "bin", "", "the prefork binary to run (default: go build this module's into the run's directory)")
	flag.IntVar(&o.workers, "workers", 2, "workers at the start")
	flag.IntVar(&o.maxWorkers, "max-workers", 0, "most workers TTIN may make (default: -workers + 2)")
	flag.StringVar(&o.mode, "mode", "reuseport", "--mode of prefork serve: reuseport or shared")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the chaos lasts")
	flag.DurationVar(&o.killEvery, "kill-every", 4*time.Second, "mean gap between two SIGKILLs of a worker (0: none)")
	flag.DurationVar(&o.hupEvery, "hup-every", 3*time.Second, "mean gap between two HUPs (0: none)")
	flag.DurationVar(&o.ttinEvery, "ttin-every", 5*time.Second, "mean gap between two TTINs (0: none)")
	flag.DurationVar(&o.ttouEvery, "ttou-every", 5*time.Second, "mean gap between two TTOUs (0: none)")
	flag.IntVar(&o.newConns, "new", 4, "goroutines making one request per new connection")
	flag.IntVar(&o.keepAlive, "keepalive", 16, "goroutines each holding a keep-alive connection")
	flag.IntVar(&o.perConn, "per-conn", 100, "requests per keep-alive connection before the client closes it")
	flag.DurationVar(&o.gap, "gap", 5*time.Millisecond, "mean pause between two requests of one goroutine")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "a request's deadline (dial, write, read)")
	flag.IntVar(&o.leak, "leak", 0, "leak check: this many HUP reload cycles instead of the chaos run (0: chaos run)")
	flag.IntVar(&o.leakWarmup, "leak-warmup", 10, "leak check: reloads before the first measurement")
	flag.IntVar(&o.leakFDs, "leak-fds", 0, "leak check: fds a process (the master, a worker slot) may gain")
	flag.Int64Var(&leakRSSKiB, "leak-rss", 4096, "leak check: KiB of VmRSS a process (the master, a worker slot) may gain")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (binary, pidfile, the server's log) even if all went well")
	flag.BoolVar(&o.verbose, "v", false, "print every chaos event as it happens")
	flag.Parse()
	o.leakRSS = leakRSSKiB << 10
	if o.maxWorkers == 0 {
		o.maxWorkers = o.workers + 2
	}
	if o.workers < 1 || o.maxWorkers < o.workers || (o.mode != "reuseport" && o.mode != "shared") || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "chaos: need -workers >= 1, -max-workers >= -workers, -mode reuseport|shared and no arguments")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) (code int, err error) {
	dir, err := os.MkdirTemp("", "prefork-chaos-")
	if err != nil {
		return 1, err
	}
	defer func() {
		if code == 0 && err == nil && !o.keep {
			os.RemoveAll(dir)
		} else {
			logf("the run's directory (the server's log: prefork.log) is kept: %s", dir)
		}
	}()
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "prefork")
		logf("building prefork into %s", bin)
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/prefork/prefork").CombinedOutput(); err != nil {
			return 1, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	srv, err := startServer(bin, dir, o)
	if err != nil {
		return 1, err
	}
	defer func() {
		if serr := srv.stop(); serr != nil && err == nil {
			code, err = 1, serr
		}
	}()
	logf("prefork serve: master %d, %s, %d workers (%s), log %s", srv.pid, srv.addr, o.workers, o.mode, srv.logPath)
	if o.leak > 0 {
		return leakCheck(ctx, srv, o)
	}
	return chaosRun(ctx, srv, o)
}

// server is the running `prefork serve`.
type server struct {
	cmd     *exec.Cmd
	pid     int
	addr    string
	admin   string
	logPath string
	exited  chan struct{}
	waitErr error // valid once exited is closed
}

func startServer(bin, dir string, o options) (*server, error) {
	s := &server{admin: filepath.Join(dir, "prefork.pid.sock"), logPath: filepath.Join(dir, "prefork.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	s.cmd = exec.Command(bin, "serve", "--proto", "http", "--listen", "127.0.0.1:0", "--workers", strconv.Itoa(o.workers),
		"--mode", o.mode, "--pidfile", filepath.Join(dir, "prefork.pid"), "--metrics-listen", "", "--log-format", "json")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// The master does not outlive this program (it stops its workers).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	st, err := s.waitReady(o.workers, 30*time.Second)
	if err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("prefork serve did not start (log %s): %w", s.logPath, err)
	}
	if len(st.Addrs) == 0 {
		_ = s.stop()
		return nil, errors.New("the master's status has no address")
	}
	s.addr = st.Addrs[0]
	return s, nil
}

// status asks the master's admin socket.
func (s *server) status() (master.Status, error) { return master.QueryStatus(s.admin) }

// settled reports whether want workers (or, with want 0, the desired number)
// are ready and no other worker is running.
func (s *server) settled(want int) (master.Status, bool) {
	st, err := s.status()
	if err != nil {
		return st, false
	}
	if want == 0 {
		want = st.Desired
	}
	if len(st.Workers) != want || st.Desired != want || len(chaoskit.Children(s.pid)) != want {
		return st, false
	}
	for _, w := range st.Workers {
		if w.State != "ready" {
			return st, false
		}
	}
	return st, true
}

// waitReady waits until want workers (0: the desired number) are ready and
// nothing else runs.
func (s *server) waitReady(want int, within time.Duration) (master.Status, error) {
	deadline := time.Now().Add(within)
	for {
		st, ok := s.settled(want)
		if ok {
			return st, nil
		}
		select {
		case <-s.exited:
			return st, fmt.Errorf("the master exited: %v", s.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("workers not all ready within %v: %+v", within, st.Workers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends the master TERM and waits for it and its workers to exit.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return nil // already gone (reported by whoever saw it)
	default:
	}
	if err := unix.Kill(s.pid, unix.SIGTERM); err != nil {
		return os.NewSyscallError("kill", err)
	}
	select {
	case <-s.exited:
	case <-time.After(45 * time.Second):
		_ = unix.Kill(s.pid, unix.SIGKILL)
		<-s.exited
		return errors.New("the master did not stop within 45s of TERM: SIGKILLed")
	}
	if s.waitErr != nil {
		return fmt.Errorf("the master's exit: %w", s.waitErr)
	}
	return nil
}

// ---------------------------------------------------------------- chaos run

// action is one kind of chaos, due at next.
type action struct {
	name  string
	every time.Duration
	next  time.Time
	do    func() (string, error) // what it did, for -v ("" if skipped)
}

func jitter(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration((0.5 + rng.Float64()) * float64(mean))
}

func chaosRun(ctx context.Context, srv *server, o options) (int, error) {
	ch, err := chaoskit.New(srv.pid, srv.addr)
	if err != nil {
		return 1, err
	}
	start := time.Now()
	load := chaoskit.StartLoad(chaoskit.LoadOptions{Addr: srv.addr, NewConns: o.newConns, KeepAlive: o.keepAlive,
		PerConn: o.perConn, Gap: o.gap, Timeout: o.timeout, Body: []byte("Hello, World!")})
	defer load.Stop()
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	skipped := map[string]int{}
	desired := func() int {
		st, err := srv.status()
		if err != nil {
			return -1
		}
		return st.Desired
	}
	acts := []*action{
		{name: "SIGKILL", every: o.killEvery, do: func() (string, error) {
			pids := chaoskit.Children(srv.pid)
			if len(pids) == 0 {
				skipped["SIGKILL"]++
				return "", nil
			}
			ev, err := ch.KillWorker(pids[rng.IntN(len(pids))])
			return fmt.Sprintf("SIGKILL worker %d (held %d connections, exact %v)", ev.PID, len(ev.Ports), ev.Exact), err
		}},
		{name: "HUP", every: o.hupEvery, do: func() (string, error) { return "HUP", ch.Signal(unix.SIGHUP) }},
		{name: "TTIN", every: o.ttinEvery, do: func() (string, error) {
			if n := desired(); n < 0 || n >= o.maxWorkers {
				skipped["TTIN"]++
				return "", nil
			}
			return "TTIN", ch.Signal(unix.SIGTTIN)
		}},
		{name: "TTOU", every: o.ttouEvery, do: func() (string, error) {
			if n := desired(); n <= 1 {
				skipped["TTOU"]++
				return "", nil
			}
			return "TTOU", ch.Signal(unix.SIGTTOU)
		}},
	}
	var live []*action
	for _, a := range acts {
		if a.every > 0 {
			a.next = start.Add(jitter(rng, a.every))
			live = append(live, a)
		}
	}
	end := start.Add(o.duration)
	logf("chaos for %v: SIGKILL every ~%v, HUP ~%v, TTIN ~%v, TTOU ~%v; load %d new-connection + %d keep-alive goroutines, gap ~%v",
		o.duration, o.killEvery, o.hupEvery, o.ttinEvery, o.ttouEvery, o.newConns, o.keepAlive, o.gap)
	interrupted := false
	for !interrupted {
		var a *action
		for _, x := range live {
			if a == nil || x.next.Before(a.next) {
				a = x
			}
		}
		due := end
		if a != nil && a.next.Before(end) {
			due = a.next
		}
		select {
		case <-ctx.Done():
			interrupted = true
			continue
		case <-srv.exited:
			return 1, fmt.Errorf("the master exited during the chaos: %v", srv.waitErr)
		case <-time.After(time.Until(due)):
		}
		if !time.Now().Before(end) {
			break
		}
		what, err := a.do()
		if err != nil {
			logf("%s: %v", a.name, err)
		} else if what != "" && o.verbose {
			logf("+%.3fs %s", time.Since(start).Seconds(), what)
		}
		a.next = time.Now().Add(jitter(rng, a.every))
	}
	// The load goes on until the server has settled: a slot whose worker
	// was killed and backs off, queued connections waiting for it.
	logf("chaos over; waiting for the workers to settle")
	st, settleErr := srv.waitReady(0, 60*time.Second)
	load.Stop()
	s := chaoskit.Summarize(load, ch.Events())
	events := ch.Events()

	fmt.Printf("prefork chaos: %d workers at the start (1..%d), --mode %s, %v of chaos, %.1fs in all\n",
		o.workers, o.maxWorkers, o.mode, o.duration, time.Since(start).Seconds())
	fmt.Printf("load:     %d new-connection + %d keep-alive goroutines (%d requests per connection), mean gap %v, timeout %v\n",
		o.newConns, o.keepAlive, o.perConn, o.gap, o.timeout)
	s.Write(os.Stdout, start, events)
	if len(skipped) > 0 {
		fmt.Printf("skipped:  %v (the worker count was at its bound, or no worker to kill)\n", skipped)
	}
	if settleErr != nil {
		fmt.Printf("server:   did not settle: %v\n", settleErr)
	} else {
		var restarts []string
		for _, w := range st.Workers {
			restarts = append(restarts, fmt.Sprintf("slot %d: %d", w.Slot, w.Restarts))
		}
		fmt.Printf("server:   %d workers at the end, %d reloads counted, restarts after crashes %s\n",
			st.Desired, st.Reloads, strings.Join(restarts, ", "))
	}
	fmt.Printf("server log: %s\n", logDigest(srv.logPath))
	if interrupted {
		return 130, errors.New("interrupted")
	}
	if settleErr != nil {
		return 1, settleErr
	}
	if s.OtherReused+s.OtherFresh > 0 {
		return 1, nil
	}
	return 0, nil
}

// logDigest counts the master's warnings and errors by message, and the
// longest crash-loop backoff (connections hashed to a slot whose worker is
// backing off wait that long in its queue).
func logDigest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	msgs := map[string]int{}
	var longest time.Duration
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Delay int64  `json:"delay"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || (rec.Level != "WARN" && rec.Level != "ERROR") {
			continue
		}
		msgs[rec.Level+" "+strconv.Quote(rec.Msg)]++
		if rec.Msg == "worker crash loop: backing off" {
			longest = max(longest, time.Duration(rec.Delay))
		}
	}
	keys := make([]string, 0, len(msgs))
	for k := range msgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", msgs[k], k)
	}
	if len(parts) == 0 {
		return "no warning or error"
	}
	return fmt.Sprintf("%s; longest crash backoff %v", strings.Join(parts, ", "), longest)
}

// ---------------------------------------------------------------- leak check

// sample is one process's fd count and RSS.
type sample struct {
	pid int
	fds int
	rss int64
}

// measurement is the master's and each slot's worker's sample.
type measurement struct {
	master sample
	slots  map[int]sample
}

// quiesce waits until no worker holds a client connection (the load is
// stopped), so that the workers' fd counts are their own.
func quiesce(srv *server, port uint16, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		busy := 0
		for _, pid := range chaoskit.Children(srv.pid) {
			ports, err := chaoskit.PeerPorts(pid, port)
			if err != nil {
				return err
			}
			busy += len(ports)
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the workers still hold %d connections %v after the load stopped", busy, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func measure(srv *server, port uint16) (measurement, error) {
	m := measurement{slots: map[int]sample{}}
	st, err := srv.waitReady(0, 30*time.Second)
	if err != nil {
		return m, err
	}
	if err := quiesce(srv, port, 10*time.Second); err != nil {
		return m, err
	}
	one := func(pid int) (sample, error) {
		// The least of a few samples 20 ms apart: the master closes its end
		// of an admin connection (the status just asked) a moment after
		// answering.
		s := sample{pid: pid, fds: 1 << 30}
		for range 10 {
			n, err := chaoskit.FDCount(pid)
			if err != nil {
				return s, err
			}
			s.fds = min(s.fds, n)
			time.Sleep(20 * time.Millisecond)
		}
		s.rss, err = chaoskit.RSS(pid)
		return s, err
	}
	if m.master, err = one(srv.pid); err != nil {
		return m, err
	}
	for _, w := range st.Workers {
		if m.slots[w.Slot], err = one(w.PID); err != nil {
			return m, err
		}
	}
	return m, nil
}

// reload sends HUP and waits until it is done: counted, every slot's worker
// newer than before and ready, nothing else running.
func reload(ch *chaoskit.Chaos, srv *server) error {
	before, err := srv.status()
	if err != nil {
		return err
	}
	gen := map[int]int{}
	for _, w := range before.Workers {
		gen[w.Slot] = max(gen[w.Slot], w.Generation)
	}
	if err := ch.Signal(unix.SIGHUP); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, ok := srv.settled(before.Desired)
		if ok && st.Reloads > before.Reloads {
			newer := true
			for _, w := range st.Workers {
				newer = newer && w.Generation > gen[w.Slot]
			}
			if newer {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reload not done within 30s: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func leakCheck(ctx context.Context, srv *server, o options) (int, error) {
	ch, err := chaoskit.New(srv.pid, srv.addr)
	if err != nil {
		return 1, err
	}
	_, p, _ := net.SplitHostPort(srv.addr)
	port64, _ := strconv.ParseUint(p, 10, 16)
	port := uint16(port64)
	lo := chaoskit.LoadOptions{Addr: srv.addr, NewConns: 1, KeepAlive: 2, PerConn: 100, Gap: 20 * time.Millisecond,
		Timeout: o.timeout, Body: []byte("Hello, World!")}
	var loads []*chaoskit.Load
	cycles := func(n int, progress bool) error {
		load := chaoskit.StartLoad(lo)
		loads = append(loads, load)
		defer load.Stop()
		t0 := time.Now()
		for i := 1; i <= n; i++ {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			if err := reload(ch, srv); err != nil {
				return fmt.Errorf("reload %d: %w", i, err)
			}
			if progress && (i%max(1, n/10) == 0 || i == n) {
				fds, _ := chaoskit.FDCount(srv.pid)
				rss, _ := chaoskit.RSS(srv.pid)
				logf("reload %4d/%d: %.1fs, %.0f ms per reload; master: %d fds, %d KiB (live, under the load)",
					i, n, time.Since(t0).Seconds(), time.Since(t0).Seconds()*1000/float64(i), fds, rss>>10)
			}
		}
		return nil
	}
	logf("leak check: %d warm-up reloads", o.leakWarmup)
	if err := cycles(o.leakWarmup, false); err != nil {
		return 1, err
	}
	before, err := measure(srv, port)
	if err != nil {
		return 1, err
	}
	logf("leak check: %d reloads under the load", o.leak)
	t0 := time.Now()
	if err := cycles(o.leak, true); err != nil {
		return 1, err
	}
	took := time.Since(t0)
	after, err := measure(srv, port)
	if err != nil {
		return 1, err
	}

	fmt.Printf("prefork leak check: %d workers, --mode %s, %d reloads (HUP, each waited for) in %.1fs (%.0f ms each), after %d warm-up reloads\n",
		o.workers, o.mode, o.leak, took.Seconds(), took.Seconds()*1000/float64(o.leak), o.leakWarmup)
	fmt.Printf("load:     %d new-connection + %d keep-alive goroutines, mean gap %v; measured with the load stopped and no connection open\n",
		lo.NewConns, lo.KeepAlive, lo.Gap)
	fmt.Printf("tolerance: %+d fds, %+d KiB VmRSS per process (the master; a slot's worker, a new process after each reload)\n\n",
		o.leakFDs, o.leakRSS>>10)
	fmt.Printf("| process | pid before → after | fds before → after | VmRSS KiB before → after |\n|---|---|---|---|\n")
	failed := false
	row := func(name string, b, a sample) {
		mark := ""
		if a.fds-b.fds > o.leakFDs || a.rss-b.rss > o.leakRSS {
			mark, failed = " **over tolerance**", true
		}
		fmt.Printf("| %s | %d → %d | %d → %d (%+d) | %d → %d (%+d)%s |\n", name, b.pid, a.pid, b.fds, a.fds, a.fds-b.fds,
			b.rss>>10, a.rss>>10, (a.rss-b.rss)>>10, mark)
	}
	row("master", before.master, after.master)
	var slots []int
	for k := range before.slots {
		slots = append(slots, k)
	}
	sort.Ints(slots)
	for _, k := range slots {
		a, ok := after.slots[k]
		if !ok {
			fmt.Printf("| worker slot %d | %d → gone | | |\n", k, before.slots[k].pid)
			failed = true
			continue
		}
		row(fmt.Sprintf("worker slot %d", k), before.slots[k], a)
	}
	fmt.Println()
	// The load's failures are reported for what they are (keep-alive ones
	// during reloads are expected until draining workers keep them); they
	// do not decide the leak check.
	var made, ok, nfailed int64
	var fails []chaoskit.Failure
	for _, l := range loads {
		m, k := l.Requests()
		made, ok, nfailed = made+m, ok+k, nfailed+l.Failed()
		fails = append(fails, l.Failures()...)
	}
	byClass := map[string]int{}
	for _, f := range fails {
		what := "new connection: "
		if f.Reused() {
			what = "keep-alive: "
		}
		byClass[what+f.Class]++
	}
	fmt.Printf("load during the reloads: %d requests, %d ok, %d failed %v\n", made, ok, nfailed, byClass)
	if failed {
		return 1, nil
	}
	return 0, nil
}
