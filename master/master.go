package master

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/worker"
)

// procState is where a worker process is in its life.
type procState int

const (
	stateStarting procState = iota // started, READY not yet received
	stateReady                     // serving
	stateStopping                  // told to STOP/QUIT/RETIRE; will exit
)

func (s procState) String() string {
	return [...]string{"starting", "ready", "stopping"}[s]
}

// proc is one worker process.
type proc struct {
	pid     int
	slot    int
	gen     int
	ctl     *net.UnixConn // the master's end of the control socketpair
	state   procState
	started time.Time
	readyAt time.Time
	lastHB  time.Time
	abortAt time.Time // SIGABRT sent (hung); zero if not
	// retired: set when the worker's slot is removed; the slot's sockets
	// close when its last worker exits.
	retired *retired
	// killAt: SIGKILL if still alive then (stop deadline); zero if none.
	killAt time.Time
	hung   bool // aborted for missing heartbeats
	conns  int  // open connections, from the last heartbeat
	// metrics receives the worker's answers to METRICS requests (written by
	// readControl, read by a scrape).
	metrics chan metricsReply
}

type metricsReply struct {
	id   string
	body []byte
}

// slot is one worker position, 0..N-1. Its number survives restarts: the
// replacement of slot k's worker is slot k's worker again, with slot k's
// sockets (reuseport mode) and metrics label.
type slot struct {
	index    int
	gen      int   // generation of the newest worker started for it
	cur      *proc // the serving (or starting) worker; nil while waiting to restart
	next     *proc // a reload's replacement, until it is ready
	restarts int   // replacements after unexpected exits
	crashes  int   // consecutive crashes, for the backoff
	// restartTimer is pending while the slot waits out its backoff.
	restartTimer *time.Timer
}

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
	cfg     Config
	log     *slog.Logger
	ls      *listeners
	events  chan event
	spawner *spawner

	slots   map[int]*slot
	desired int
	procs   map[int]*proc // by pid

	reloadQueue []int // slots still to reload, in order
	reloads     int
	stopping    bool
	stopKind    string // worker.MsgStop or worker.MsgQuit
	started     time.Time

	admin   net.Listener
	http    *httpServer
	metrics *metrics.Master
	notify  *notifier
	// readyOnce: every desired slot has been ready at least once.
	readyOnce bool
}

// New opens the listeners and prepares the master; Run starts the workers.
func New(cfg Config) (*Master, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var ls *listeners
	var err error
	if len(cfg.Inherited) > 0 {
		mode := cfg.Mode
		if ls, cfg.Mode, err = adoptListeners(mode, cfg.Inherited); err != nil {
			return nil, err
		}
		if cfg.Mode != mode {
			cfg.Logger.Warn("inherited sockets lack SO_REUSEPORT (ReusePort=yes in the .socket unit): using shared mode")
		} else if cfg.Mode == ModeReusePort {
			// Try to join the inherited socket's group now: Linux refuses a
			// socket of another user (systemd made the socket as root).
			for k := 1; k < cfg.Workers; k++ {
				if _, err = ls.forSlot(k); err != nil {
					cfg.Logger.Warn("cannot add per-slot sockets to the inherited reuseport socket's group: using shared mode", "err", err)
					ls = ls.asShared(cfg.Inherited)
					cfg.Mode = ModeShared
					break
				}
			}
		}
	} else if ls, err = openListeners(cfg.Mode, cfg.Addrs); err != nil {
		return nil, err
	}
	m := &Master{
		cfg:     cfg,
		log:     cfg.Logger,
		ls:      ls,
		events:  make(chan event, 1024),
		slots:   map[int]*slot{},
		desired: cfg.Workers,
		procs:   map[int]*proc{},
		metrics: metrics.NewMaster(),
	}
	m.notify = newNotifier(m)
	if cfg.MetricsListen != "" {
		if m.http, err = m.newHTTPServer(cfg.MetricsListen); err != nil {
			ls.closeAll()
			return nil, err
		}
	}
	return m, nil
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
	m.started = time.Now()
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

	m.spawner = newSpawner()
	defer m.spawner.close()

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
		go m.http.serve()
		defer m.http.close()
	}
	m.log.Info("master started", "pid", os.Getpid(), "workers", m.desired,
		"mode", m.cfg.Mode, "addrs", m.ls.addrs, "proto", m.cfg.Proto, "metrics", m.MetricsAddr())
	for k := 0; k < m.desired; k++ {
		m.startSlot(k)
	}

	for ev := range m.events {
		m.handle(ev)
		m.updateGauges()
		if m.stopping && len(m.procs) == 0 {
			break
		}
	}
	m.ls.closeAll()
	m.log.Info("master stopped")
	return nil
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
	case evScrape:
		ev.reply <- m.scrapePlan()
	}
}

// updateGauges refreshes the master's gauges after each event.
func (m *Master) updateGauges() {
	ready := 0
	for _, s := range m.slots {
		if s.cur != nil && s.cur.state == stateReady {
			ready++
		}
	}
	m.metrics.WorkersDesired.Set(float64(m.desired))
	m.metrics.WorkersRunning.Set(float64(ready))
	if !m.readyOnce && !m.stopping && ready == m.desired {
		m.readyOnce = true
		m.log.Info("all workers ready", "workers", ready)
		m.notify.ready()
	}
}

// reloadBusy reports whether a reload's replacement is starting.
func (m *Master) reloadBusy() bool {
	for _, s := range m.slots {
		if s.next != nil {
			return true
		}
	}
	return false
}

func (m *Master) onSignal(sig os.Signal) {
	m.log.Info("signal", "signal", sig.String())
	switch sig {
	case unix.SIGTERM:
		m.stop(worker.MsgStop)
	case unix.SIGINT, unix.SIGQUIT:
		m.stop(worker.MsgQuit)
	case unix.SIGHUP:
		m.reload()
	case unix.SIGTTIN:
		m.scale(m.desired + 1)
	case unix.SIGTTOU:
		m.scale(m.desired - 1)
	}
}

// startSlot creates slot k and starts its worker.
func (m *Master) startSlot(k int) {
	s := &slot{index: k}
	m.slots[k] = s
	m.startWorker(s)
}

// startWorker starts a worker for slot s: as s.cur if the slot has none,
// else as s.next (a reload's replacement).
func (m *Master) startWorker(s *slot) *proc {
	fds, err := m.ls.forSlot(s.index)
	if err != nil {
		m.log.Error("cannot open slot listeners", "slot", s.index, "err", err)
		m.scheduleRestart(s)
		return nil
	}
	s.gen++
	spec := worker.Spec{
		Slot:            s.index,
		Generation:      s.gen,
		Proto:           m.cfg.Proto,
		Listeners:       m.ls.describe(),
		Exclusive:       m.cfg.Mode == ModeShared,
		IdleTimeout:     m.cfg.IdleTimeout,
		GracefulTimeout: m.cfg.GracefulTimeout,
		Heartbeat:       m.cfg.heartbeat(),
		LogFormat:       m.cfg.LogFormat,
		LogLevel:        m.cfg.LogLevel,
	}
	if m.cfg.CPUAffinity {
		if cpus := allowedCPUs(); len(cpus) > 0 {
			cpu := cpus[s.index%len(cpus)]
			spec.CPU = &cpu
		}
	}
	pid, ctl, err := m.spawner.start(&m.cfg, spec, fds)
	if err != nil {
		m.log.Error("cannot start worker", "slot", s.index, "err", err)
		m.scheduleRestart(s)
		return nil
	}
	now := time.Now()
	p := &proc{pid: pid, slot: s.index, gen: s.gen, ctl: ctl, state: stateStarting, started: now, lastHB: now,
		metrics: make(chan metricsReply, 1)}
	m.procs[pid] = p
	if s.cur == nil {
		s.cur = p
	} else {
		s.next = p
	}
	go m.readControl(p.pid, ctl, p.metrics)
	m.log.Info("worker started", "slot", s.index, "gen", s.gen, "pid", pid)
	return p
}

// readControl forwards one worker's control messages until EOF. Metrics
// answers go straight to the scrape waiting for them.
func (m *Master) readControl(pid int, c *net.UnixConn, replies chan<- metricsReply) {
	buf := make([]byte, 1<<20) // a metrics answer is one datagram of some 10 KB
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return // the worker exited (its exit arrives through SIGCHLD) or we closed
		}
		msg := buf[:n]
		if rest, ok := bytes.CutPrefix(msg, []byte(worker.MsgMetrics+" ")); ok {
			id, body, _ := bytes.Cut(rest, []byte("\n"))
			select {
			case replies <- metricsReply{id: string(id), body: bytes.Clone(body)}:
			default: // an earlier answer nobody took: a timed-out scrape's
			}
			continue
		}
		m.post(evCtl{pid: pid, msg: string(msg)})
	}
}

func (m *Master) onControl(pid int, msg string) {
	p := m.procs[pid]
	if p == nil {
		return
	}
	now := time.Now()
	p.lastHB = now
	if n, ok := strings.CutPrefix(msg, worker.MsgHeartbeat+" "); ok {
		p.conns, _ = strconv.Atoi(n)
		return
	}
	switch msg {
	case worker.MsgReady:
		if p.state != stateStarting {
			return
		}
		p.state = stateReady
		p.readyAt = now
		m.log.Info("worker ready", "slot", p.slot, "gen", p.gen, "pid", pid, "after", now.Sub(p.started).Round(time.Microsecond))
		s := m.slots[p.slot]
		if s != nil && s.next == p {
			// A reload's replacement is serving: drain the one it replaces.
			old := s.cur
			s.cur, s.next = p, nil
			if old != nil {
				m.stopProc(old, worker.MsgStop)
			}
			m.reloadNext()
		}
	case worker.MsgHeartbeat:
	default:
		m.log.Warn("unknown control message", "pid", pid, "msg", msg)
	}
}

func (m *Master) onExit(pid int, ws unix.WaitStatus) {
	p := m.procs[pid]
	if p == nil {
		return // not a worker: an orphan reparented to us as PID 1
	}
	delete(m.procs, pid)
	p.ctl.Close()
	how := exitString(ws)
	s := m.slots[p.slot]
	expected := p.state == stateStopping
	if expected {
		m.log.Info("worker exited", "slot", p.slot, "gen", p.gen, "pid", pid, "status", how)
	} else {
		m.log.Warn("worker died", "slot", p.slot, "gen", p.gen, "pid", pid, "status", how,
			"uptime", time.Since(p.started).Round(time.Millisecond))
	}
	if r := p.retired; r != nil {
		if r.procs--; r.procs == 0 && !m.stopping {
			m.closeRetired(r)
		}
		return
	}
	if s == nil || m.stopping {
		return
	}
	switch {
	case s.next == p:
		// A reload's replacement died before it was ready: keep the old
		// worker and go on with the next slot.
		s.next = nil
		m.log.Error("reload: replacement worker died before ready; keeping the old one", "slot", s.index)
		m.reloadNext()
	case s.cur == p:
		s.cur = nil
		if !expected {
			s.restarts++
			reason := metrics.RestartExited
			switch {
			case p.hung:
				reason = metrics.RestartHung
			case ws.Signaled():
				reason = metrics.RestartSignaled
			}
			m.metrics.Restarts.WithLabelValues(reason).Inc()
			if !p.readyAt.IsZero() && time.Since(p.readyAt) >= m.cfg.StablePeriod {
				s.crashes = 0
			}
			m.scheduleRestart(s)
		}
	}
}

// scheduleRestart replaces slot s's worker: at once after a first crash,
// after an exponentially growing delay for repeated ones.
func (m *Master) scheduleRestart(s *slot) {
	if m.stopping || s.restartTimer != nil {
		return
	}
	delay := backoff(s.crashes, m.cfg.BackoffMin, m.cfg.BackoffMax)
	s.crashes++
	if delay == 0 {
		m.startWorker(s)
		return
	}
	m.log.Warn("worker crash loop: backing off", "slot", s.index, "delay", delay, "crashes", s.crashes)
	gen := s.gen
	s.restartTimer = time.AfterFunc(delay, func() { m.post(evRestart{slot: s.index, gen: gen}) })
}

// backoff is 0 for the first crash, then min, 2·min, 4·min... up to max.
func backoff(crashes int, lo, hi time.Duration) time.Duration {
	if crashes == 0 {
		return 0
	}
	d := lo
	for i := 1; i < crashes && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// onTick kills hung workers, enforces stop deadlines and talks to systemd.
func (m *Master) onTick() {
	now := time.Now()
	healthy := true
	for _, p := range m.procs {
		if p.state != stateStopping && now.Sub(p.lastHB) > 2*m.cfg.heartbeat()+time.Second {
			healthy = false
		}
	}
	m.notify.tick(now, healthy)
	for _, p := range m.procs {
		switch {
		case !p.killAt.IsZero() && now.After(p.killAt):
			m.log.Warn("worker did not exit in time: SIGKILL", "slot", p.slot, "pid", p.pid)
			_ = unix.Kill(p.pid, unix.SIGKILL)
			p.killAt = time.Time{}
		case !p.abortAt.IsZero():
			if now.Sub(p.abortAt) > 3*time.Second {
				_ = unix.Kill(p.pid, unix.SIGKILL)
			}
		case now.Sub(p.lastHB) > m.cfg.WorkerTimeout:
			// Its loop is stuck (no heartbeat from the loop thread). SIGABRT
			// makes the Go runtime print every goroutine's stack, then SIGKILL
			// if that does not end it.
			m.log.Error("worker hung: no heartbeat; aborting it", "slot", p.slot, "pid", p.pid,
				"silent", now.Sub(p.lastHB).Round(time.Millisecond), "state", p.state.String())
			_ = unix.Kill(p.pid, unix.SIGABRT)
			p.abortAt = now
			p.hung = true
		}
	}
}

// stopProc tells a worker to stop (MsgStop, MsgQuit or MsgRetire) and sets
// the deadline after which it is killed.
func (m *Master) stopProc(p *proc, how string) {
	if p.state == stateStopping && how != worker.MsgQuit {
		return
	}
	p.state = stateStopping
	grace := m.cfg.GracefulTimeout + 5*time.Second
	if how == worker.MsgQuit {
		grace = 5 * time.Second
	}
	p.killAt = time.Now().Add(grace)
	_ = p.ctl.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := p.ctl.Write([]byte(how)); err != nil {
		// The worker is gone or wedged: a signal does the same job.
		m.log.Warn("control write failed; signalling", "pid", p.pid, "err", err)
		sig := unix.SIGTERM
		if how == worker.MsgQuit {
			sig = unix.SIGKILL
		}
		_ = unix.Kill(p.pid, sig)
	}
}

// stop begins a graceful (MsgStop) or fast (MsgQuit) stop of everything.
func (m *Master) stop(how string) {
	if m.stopping && (how == m.stopKind || how == worker.MsgStop) {
		return
	}
	if !m.stopping {
		m.notify.stopping()
	}
	m.stopping = true
	m.stopKind = how
	m.reloadQueue = nil
	for _, s := range m.slots {
		if s.restartTimer != nil {
			s.restartTimer.Stop()
			s.restartTimer = nil
		}
	}
	for _, p := range m.procs {
		m.stopProc(p, how)
	}
	// The workers close their copies as they drain; closing ours makes the
	// sockets go away once the last worker lets go.
	m.ls.closeAll()
	if m.admin != nil {
		m.admin.Close()
	}
}

// reload starts a rolling reload: slot by slot, a new worker is started and,
// once it is ready, the old one is drained.
func (m *Master) reload() {
	if m.stopping {
		return
	}
	m.reloads++
	m.metrics.Reloads.Inc()
	m.notify.reloading()
	m.reloadQueue = m.reloadQueue[:0]
	for k := range m.slots {
		m.reloadQueue = append(m.reloadQueue, k)
	}
	sort.Ints(m.reloadQueue)
	if !m.reloadBusy() {
		m.reloadNext()
	}
}

// reloadNext starts the replacement for the next slot in the reload queue.
func (m *Master) reloadNext() {
	for len(m.reloadQueue) > 0 && !m.stopping {
		k := m.reloadQueue[0]
		m.reloadQueue = m.reloadQueue[1:]
		s := m.slots[k]
		if s == nil || s.next != nil {
			continue
		}
		if s.cur == nil {
			continue // waiting to restart: its restart will run the new code
		}
		if m.startWorker(s) != nil && s.next != nil {
			return // onControl(READY) calls us again
		}
	}
	if len(m.reloadQueue) == 0 && !m.reloadBusy() && !m.stopping {
		m.log.Info("reload done")
		m.notify.ready()
	}
}

// scale changes the number of worker slots by adding slot N or retiring the
// highest slot.
func (m *Master) scale(n int) {
	if m.stopping || n < 1 {
		if n < 1 {
			m.log.Warn("cannot scale below one worker")
		}
		return
	}
	for m.desired < n {
		k := m.desired
		m.desired++
		m.log.Info("scaling up", "workers", m.desired)
		m.startSlot(k)
	}
	for m.desired > n {
		m.desired--
		k := m.desired
		m.log.Info("scaling down", "workers", m.desired, "retiring_slot", k)
		m.retire(k)
	}
}

// retire removes slot k: new connections are steered away from its sockets,
// its worker accepts what is queued and drains, and its sockets are closed
// when it has exited.
func (m *Master) retire(k int) {
	s := m.slots[k]
	delete(m.slots, k)
	m.reloadQueue = removeInt(m.reloadQueue, k)
	if s.restartTimer != nil {
		s.restartTimer.Stop()
	}
	fds, err := m.ls.retireSlot(k)
	if err != nil {
		m.log.Error("steering away from retiring slot", "slot", k, "err", err)
	}
	r := &retired{slot: k, fds: fds}
	for _, p := range []*proc{s.next, s.cur} {
		if p != nil {
			p.retired = r
			r.procs++
			m.stopProc(p, worker.MsgRetire)
		}
	}
	if r.procs == 0 {
		m.closeRetired(r) // no worker holds the queue: nobody can drain it
	}
}

// retired is a retired slot's sockets, closed when its last worker exits.
type retired struct {
	slot  int
	fds   []int
	procs int
}

func (m *Master) closeRetired(r *retired) {
	if err := m.ls.closeRetired(r.fds); err != nil {
		m.log.Error("closing retired slot's sockets", "slot", r.slot, "err", err)
	}
}

func removeInt(xs []int, v int) []int {
	out := xs[:0]
	for _, x := range xs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func exitString(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("status %#x", int(ws))
}

func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// writePidFile writes the pid atomically (temp file + rename), refusing to
// replace the pidfile of a live process.
func writePidFile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 && pid != os.Getpid() {
			if unix.Kill(pid, 0) == nil {
				return fmt.Errorf("pidfile %s: prefork already running as pid %d", path, pid)
			}
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pidfile: %w", err)
	}
	return nil
}
