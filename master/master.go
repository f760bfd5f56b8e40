package master

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// event is a message to the master's goroutine.
type event interface{}

type (
	evSignal struct{ sig os.Signal }
	evExit   struct{ pid, status int }
	evCtl    struct {
		pid int
		msg string
	}
	evRestart struct{ slot, gen int }
	evTick    struct{}
	evAdmin   struct {
		cmd   string
		reply chan<- adminReply
	}
	// evScrape asks for the workers a /metrics scrape should gather.
	evScrape struct{ reply chan<- scrapePlan }
)

// Master supervises the workers. Every field below is owned by the goroutine
// running Run; other goroutines talk to it through events.
type Master struct {
	cfg    Config
	log    *slog.Logger
	ls     *listeners
	events chan event
	env    env

	slots   map[int]*slot
	desired int
	procs   map[int]*proc // by pid

	reloadQueue []int       // slots still to reload, in order
	scaleWaits  []scaleWait // admin "scale N" commands waiting for their count (scale.go)
	reloads     int
	stopping    bool
	stopKind    string // wire.MsgStop or wire.MsgQuit
	started     time.Time

	admin   net.Listener
	http    *httpServer
	metrics *metrics.Master
	notify  *notifier
	// readyOnce: every desired slot has been ready at least once.
	readyOnce bool
	// accessLog is the access log the master opened for its workers (-1: none).
	accessLog int
	// rootDir is the --root directory (O_PATH) the workers inherit (-1: none).
	rootDir int
	// acc accepts and hands connections out in handoff mode (nil otherwise);
	// handoff is its series.
	acc     *acceptor
	handoff *metrics.Handoff
	// accNow is acc for the scrapes' goroutines (an exec that failed
	// replaces acc).
	accNow atomic.Pointer[acceptor]

	// Upgrade in place (upgrade.go). sp is the spawner (nil until Run, and
	// in the supervisor's table tests); exe and argv are what an upgrade
	// executes; version and binID say which build this image is.
	sp             *spawner
	exe            string
	argv           []string
	version, binID string
	upgrade        *UpgradeStatus // the last upgrade (nil: none yet)
	upgradeCounts  map[string]int // prefork_upgrades_total, carried across execs
	upgradePending bool           // requested; waits for a reload or start in flight
	execPending    bool           // checked; the exec waits for a reload or start in flight
	upgrading      bool           // this image replaces the workers after an upgrade exec
	check          *preflight     // the new binary's check in progress
	oldExe         int            // the previous image's binary, for a rollback (-1: none)
	adopt          *upgradeState  // set by New in an upgraded image; Run adopts the workers
	// rssWarned: the --max-worker-rss below a fresh worker's RSS was said.
	rssWarned bool
	// noReap: the reaper leaves exits for the next image (during an exec).
	noReap atomic.Bool
}

// New checks cfg (Config.Validate: nothing is bound if it fails), opens or
// adopts the listeners and the metrics listener, and prepares the master;
// Run starts the workers.
func New(cfg Config) (*Master, error) {
	cfg.SetDefaults()
	st, err := takeUpgradeState()
	if err != nil {
		return nil, err
	}
	if st != nil {
		cfg.adopting = true // the pidfile and sockets are this image's already
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := applyRlimit(cfg.RlimitNofile, cfg.Logger); err != nil {
		return nil, err
	}
	if st != nil {
		m, err := newAdopted(cfg, st)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	accessLog := -1
	if cfg.AccessLog != "" && cfg.AccessLog != "-" {
		// Opened here, as the master's user, and inherited by every worker
		// (fd 4+n), as nginx's master opens its logs for its workers.
		fd, err := unix.Open(cfg.AccessLog, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--access-log %s: %w", cfg.AccessLog, os.NewSyscallError("open", err))
		}
		accessLog = fd
	}
	rootDir := -1
	if cfg.Root != "" {
		// Opened here and inherited, so a worker of another --user serves
		// the tree whatever the permissions of the directories above it.
		fd, err := unix.Open(cfg.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if accessLog >= 0 {
				_ = closeFD(accessLog)
			}
			return nil, fmt.Errorf("--root %s: %w", cfg.Root, os.NewSyscallError("open", err))
		}
		rootDir = fd
	}
	ls, lerr := cfg.listeners()
	if err = lerr; err != nil {
		for _, fd := range []int{accessLog, rootDir} {
			if fd >= 0 {
				_ = closeFD(fd)
			}
		}
		return nil, err
	}
	m := newMaster(cfg, ls)
	m.accessLog, m.rootDir = accessLog, rootDir
	if m.cfg.Mode == ModeHandoff {
		if err := m.newHandoff(); err != nil {
			ls.closeAll()
			for _, fd := range []int{accessLog, rootDir} {
				if fd >= 0 {
					_ = closeFD(fd)
				}
			}
			return nil, err
		}
	}
	if cfg.MetricsListen != "" {
		if m.http, err = m.newHTTPServer(cfg.MetricsListen, cfg.MetricsFallback); err != nil {
			ls.closeAll()
			return nil, err
		}
	}
	return m, nil
}

// newMaster builds the supervisor's state around ls; the env is set by Run
// (or by a test).
func newMaster(cfg Config, ls *listeners) *Master {
	m := &Master{
		cfg:           cfg,
		log:           cfg.Logger,
		ls:            ls,
		events:        make(chan event, 1024),
		slots:         map[int]*slot{},
		desired:       cfg.Workers,
		procs:         map[int]*proc{},
		metrics:       metrics.NewMaster(),
		accessLog:     -1,
		rootDir:       -1,
		exe:           originalExe(),
		argv:          os.Args,
		version:       version(),
		binID:         binaryID(),
		oldExe:        -1,
		upgradeCounts: map[string]int{},
	}
	m.notify = newNotifier(m)
	return m
}

// Addrs returns the bound listen addresses (port 0 resolved).
func (m *Master) Addrs() []string { return m.ls.addrs }

// MetricsAddr returns the bound metrics address ("" when disabled).
func (m *Master) MetricsAddr() string {
	if m.http == nil {
		return ""
	}
	return m.http.addr
}

// Run starts the workers and supervises them until a stop completes. It
// returns nil after a clean stop (TERM, INT, QUIT).
//
// On the main thread, locked there by LockMainThread (app does it), the
// calling goroutine forks the workers and would make an upgrade's execve,
// and the supervision runs on another; elsewhere (a test's goroutine) a
// goroutine locked to a thread of its own forks them.
func (m *Master) Run() error {
	if onMainThread() {
		sp := newInlineSpawner()
		errc := make(chan error, 1)
		go func() {
			errc <- m.run(sp)
			sp.close()
		}()
		sp.serve()
		return <-errc
	}
	sp := newSpawner()
	defer sp.close()
	return m.run(sp)
}

// mainLocked: LockMainThread ran in an init function.
var mainLocked atomic.Bool

// LockMainThread locks the calling goroutine to its OS thread. Called from
// an init function (package app does), that is the main goroutine on the
// process's main thread, which Run then forks every worker from and makes
// an upgrade's execve on. Both matter: Pdeathsig fires when the thread that
// forked a worker ends, and execve ends every thread but the caller's, so
// forking and exec-ing on the one thread that survives an exec (and that,
// as the thread group's leader, lives as long as the process) is what keeps
// the workers alive through any number of upgrades. A worker role should
// call runtime.UnlockOSThread first (its loop runs better unlocked).
func LockMainThread() {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		mainLocked.Store(true)
	}
}

// onMainThread reports whether the caller runs on the main thread, locked
// there by LockMainThread.
func onMainThread() bool { return mainLocked.Load() && unix.Gettid() == unix.Getpid() }

// masterSignals are the signals the master handles.
var masterSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP,
	unix.SIGTTIN, unix.SIGTTOU, unix.SIGCHLD, unix.SIGUSR2}

// earlySignals catches the master's signals from the first moments of an
// image an upgrade started: until Run's signal.Notify, a TERM or a second
// USR2 would get the Go runtime's default action (the process ends, and
// its workers with it). Nil when the process was not started by an upgrade.
var earlySignals = func() chan os.Signal {
	if _, ok := os.LookupEnv(UpgradeStateEnv); !ok {
		return nil
	}
	c := make(chan os.Signal, 32)
	signal.Notify(c, masterSignals...)
	return c
}()

func (m *Master) run(sp *spawner) error {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, masterSignals...)
	defer signal.Stop(sigs)
	if earlySignals != nil {
		// Caught before Notify: handled now (one caught by both in the
		// instant between is handled twice, which every signal here bears).
		signal.Stop(earlySignals)
		for len(earlySignals) > 0 {
			select {
			case sigs <- <-earlySignals:
			default: // 32 pending already: this one merges with them
			}
		}
	}

	if os.Getpid() == 1 {
		m.log.Info("running as PID 1: reaping every child")
	}
	done := make(chan struct{})
	defer close(done)
	go m.forwardSignals(sigs, done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	go func() {
		for {
			select {
			case <-tick.C:
				m.post(evTick{})
			case <-done:
				return
			}
		}
	}()

	// Handoff mode: the acceptor runs from the start; it accepts nothing
	// until a worker is ready (connections wait in the kernel's queue).
	m.startAcceptor()
	defer m.stopAccepting()

	m.sp = sp
	m.env = osEnv(sp)
	m.started = m.env.now()
	if m.adopt != nil {
		m.started = m.adopt.Started
	}

	if m.cfg.PidFile != "" {
		if err := writePidFile(m.cfg.PidFile); err != nil {
			return err
		}
		defer os.Remove(m.cfg.PidFile)
	}
	if m.cfg.AdminSocket != "" {
		if err := m.startAdmin(); err != nil {
			return err
		}
		defer m.admin.Close()
	}

	if m.http != nil {
		go m.http.serve(m.log)
		defer m.http.close()
	}
	m.log.Info("master started", "pid", os.Getpid(), "workers", m.desired, "version", m.version,
		"mode", m.cfg.Mode, "addrs", m.ls.addrs, "proto", m.cfg.Proto, "metrics", m.MetricsAddr(), "upgraded", m.adopt != nil)
	if m.adopt != nil {
		m.adoptWorkers()
		m.updateGauges()
	} else {
		m.startSlots()
	}
	for ev := range m.events {
		if m.step(ev) {
			break
		}
	}
	m.stopAccepting() // stopped already by the stop; the sockets close next
	m.ls.closeAll()
	for _, fd := range []int{m.accessLog, m.rootDir} {
		if fd >= 0 {
			_ = closeFD(fd)
		}
	}
	m.log.Info("master stopped")
	return nil
}

// startSlots starts the desired slots' first workers.
func (m *Master) startSlots() {
	for k := 0; k < m.desired; k++ {
		m.startSlot(k)
	}
	m.updateGauges()
}

// step handles one event and reports whether the master is done: stopping,
// with no worker left.
func (m *Master) step(ev event) (done bool) {
	m.handle(ev)
	m.maybeStartUpgrade()
	m.updateGauges()
	m.checkScale()
	return m.stopping && len(m.procs) == 0
}

// post queues an event for the master's goroutine.
func (m *Master) post(ev event) { m.events <- ev }

// forwardSignals turns signals into events; SIGCHLD reaps children first.
func (m *Master) forwardSignals(sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case s := <-sigs:
			if s == unix.SIGCHLD {
				m.reap()
				continue
			}
			m.post(evSignal{s})
		case <-done:
			return
		}
	}
}

// reap collects every exited child with wait4(-1, WNOHANG). Waiting for any
// child, not only known workers, is what a PID 1 must do; the master starts
// no other children, so it takes nothing from anyone.
func (m *Master) reap() {
	if m.noReap.Load() {
		return // an exec is under way: the next image reaps
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			return
		}
		m.post(evExit{pid: pid, status: int(ws)})
	}
}

func (m *Master) handle(ev event) {
	switch ev := ev.(type) {
	case evSignal:
		m.onSignal(ev.sig)
	case evExit:
		if !m.onCheckExit(ev.pid, unix.WaitStatus(ev.status)) {
			m.onExit(ev.pid, unix.WaitStatus(ev.status))
		}
	case evCheckOutput:
		m.onCheckOutput(ev)
	case evCtl:
		m.onControl(ev.pid, ev.msg)
	case evRestart:
		if s := m.slots[ev.slot]; s != nil && s.gen == ev.gen && s.cur == nil && !m.stopping {
			s.restartTimer = nil
			m.startWorker(s)
		}
	case evTick:
		m.onTick()
	case evAdmin:
		ev.reply <- m.onAdmin(ev.cmd)
	case evScale:
		m.onScale(ev)
	case evScrape:
		ev.reply <- m.scrapePlan()
	}
}

func (m *Master) onSignal(sig os.Signal) {
	m.log.Info("signal", "signal", sig.String())
	switch sig {
	case unix.SIGTERM:
		m.stop(wire.MsgStop)
	case unix.SIGINT, unix.SIGQUIT:
		m.stop(wire.MsgQuit)
	case unix.SIGHUP:
		m.reload()
	case unix.SIGTTIN:
		m.scale(m.desired + 1)
	case unix.SIGTTOU:
		m.scale(m.desired - 1)
	case unix.SIGUSR2:
		if _, err := m.requestUpgrade("SIGUSR2"); err != nil {
			m.log.Error("upgrade refused", "err", err)
		}
	}
}

// updateGauges refreshes the master's gauges after each event, and tells
// systemd READY=1 once every desired slot has been ready.
func (m *Master) updateGauges() {
	ready := m.readySlots()
	m.metrics.WorkersDesired.Set(float64(m.desired))
	m.metrics.WorkersRunning.Set(float64(ready))
	if !m.readyOnce && !m.stopping && ready == m.desired {
		m.readyOnce = true
		m.log.Info("all workers ready", "workers", ready)
		m.notify.ready()
	}
}

// readySlots counts the slots whose serving worker is ready.
func (m *Master) readySlots() int {
	ready := 0
	for _, s := range m.slots {
		if s.cur != nil && s.cur.state == stateReady {
			ready++
		}
	}
	return ready
}

func exitString(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("status %#x", int(ws))
}

func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}
