package master

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
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
}

// New checks cfg (Config.Validate: nothing is bound if it fails), opens or
// adopts the listeners and the metrics listener, and prepares the master;
// Run starts the workers.
func New(cfg Config) (*Master, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := applyRlimit(cfg.RlimitNofile, cfg.Logger); err != nil {
		return nil, err
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
	ls, err := cfg.listeners()
	if err != nil {
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
		cfg:       cfg,
		log:       cfg.Logger,
		ls:        ls,
		events:    make(chan event, 1024),
		slots:     map[int]*slot{},
		desired:   cfg.Workers,
		procs:     map[int]*proc{},
		metrics:   metrics.NewMaster(),
		accessLog: -1,
		rootDir:   -1,
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
func (m *Master) Run() error {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP,
		unix.SIGTTIN, unix.SIGTTOU, unix.SIGCHLD)
	defer signal.Stop(sigs)

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

	sp := newSpawner()
	defer sp.close()
	m.env = osEnv(sp)
	m.started = m.env.now()

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
	m.log.Info("master started", "pid", os.Getpid(), "workers", m.desired,
		"mode", m.cfg.Mode, "addrs", m.ls.addrs, "proto", m.cfg.Proto, "metrics", m.MetricsAddr())
	m.startSlots()
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
		m.onExit(ev.pid, unix.WaitStatus(ev.status))
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
