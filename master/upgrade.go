package master

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/buildinfo"
	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/reuseport"
)

// Binary upgrade in place (USR2, `prefork upgrade`). The master re-executes
// the binary at its original path with execve(2), keeping its PID, and
// carries across the exec every socket and what it needs to adopt its
// workers; the new image then replaces the workers slot by slot as a HUP
// reload does. doc.go ("Upgrade in place") tells the whole story; this file
// is its code:
//
//	requestUpgrade   USR2 or the admin command: queued while a reload or a
//	                 start is in flight, refused while one is in progress
//	startCheck       the pre-flight: the new binary, run with the master's
//	                 own arguments and UpgradeCheckEnv set, validates that
//	                 configuration without binding anything and says
//	                 CheckToken; anything else stops the upgrade here
//	execUpgrade      RELOADING=1, the acceptor paused, the state written to
//	                 UpgradeStateEnv, the fds made inheritable, execve on the
//	                 spawner's thread; back here only if execve failed
//	adoptWorkers     the new image: the old workers become its own
//	rollback         the new binary's first workers did not get ready: exec
//	                 the previous binary again (an fd of it is carried), which
//	                 adopts everything and replaces the new workers
const (
	// UpgradeStateEnv carries the upgrade state (JSON) into the new image;
	// it reads and removes it at once, and workers never see it.
	UpgradeStateEnv = "PREFORK_UPGRADE_STATE"
	// UpgradeCheckEnv, set for a pre-flight check, makes `prefork serve`
	// validate its configuration, print CheckToken and exit without binding.
	UpgradeCheckEnv = "PREFORK_UPGRADE_CHECK"
	// UpgradeFormat is the version of the state's format. A binary that
	// says another in its check is refused.
	UpgradeFormat = 1
	// CheckToken starts the line a binary prints when its check passed:
	// "prefork-upgrade-check ok format=1 version=v1.2.3".
	CheckToken = "prefork-upgrade-check ok"
	// checkTimeout bounds the pre-flight check.
	checkTimeout = 10 * time.Second
	// checkOutputMax is what the master keeps of the check's output.
	checkOutputMax = 64 << 10
)

// Upgrade states in UpgradeStatus.State.
const (
	UpgradeChecking   = "checking"    // the new binary's pre-flight check runs
	UpgradeReplacing  = "replacing"   // the new master replaces the workers
	UpgradeDone       = "done"        // master and workers run the new binary
	UpgradeFailed     = "failed"      // nothing changed: the old binary serves on
	UpgradeRolledBack = "rolled_back" // the new workers failed: back on the old binary
)

// UpgradeStatus is the last upgrade, in Status (and carried across the exec).
type UpgradeStatus struct {
	Seq     int       `json:"seq"` // upgrades requested since the master started
	State   string    `json:"state"`
	Path    string    `json:"path"`
	From    string    `json:"from"`
	To      string    `json:"to,omitempty"`
	Error   string    `json:"failure,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Finished reports whether the upgrade has ended, one way or the other.
func (u UpgradeStatus) Finished() bool {
	switch u.State {
	case UpgradeDone, UpgradeFailed, UpgradeRolledBack:
		return true
	}
	return false
}

// upgradeState is what one image of the master tells the next.
type upgradeState struct {
	Format   int
	Rollback bool // the exec goes back to the previous binary
	Exe      string
	Argv     []string
	OldExe   int // the previous image's binary, open (-1: none)
	Started  time.Time
	Mode     Mode
	Addrs    []string
	Shared   []int
	Groups   []groupState
	Slots    map[int][]int
	Retired  []retiredState
	// AccessLog, RootDir, Metrics and Admin are fds, -1 for none.
	AccessLog, RootDir int
	Metrics            int
	Admin              int
	Desired            int
	Reloads            int
	Upgrades           map[string]int // prefork_upgrades_total so far, by result
	Record             UpgradeStatus
	SlotStates         []slotState
	Procs              []procHandover
}

type groupState struct {
	FDs  []int
	Live []bool
}

type retiredState struct {
	Slot int
	FDs  []int
}

type slotState struct {
	Index, Gen, Restarts, Crashes int
	Paused                        bool
}

type procHandover struct {
	PID, Slot, Gen, Ctl int
	Ready               bool // else stopping
	Current             bool // its slot's serving worker
	Retired             int  // 1 + its index in Retired; 0: none
	BinID               string
	Conns               int
	Started, ReadyAt    time.Time
	KillAt              time.Time
	Handed, Closed      uint64
}

// preflight is a pre-flight check in progress.
type preflight struct {
	pid      int
	deadline time.Time
	out      []byte
	outDone  bool
	exited   bool
	status   unix.WaitStatus
	killed   bool
}

type evCheckOutput struct {
	pid int
	out []byte
}

// requestUpgrade starts an upgrade, or queues it behind a reload or a
// worker start in flight. It returns the upgrade's sequence number.
func (m *Master) requestUpgrade(source string) (int, error) {
	switch {
	case m.stopping:
		return 0, errors.New("upgrade: the master is stopping")
	case m.sp == nil:
		return 0, errors.New("upgrade: not supported by this master (no spawner)")
	case m.check != nil || m.execPending || m.upgrading || (m.upgrade != nil && !m.upgrade.Finished()):
		return 0, fmt.Errorf("upgrade: upgrade %d is in progress (%s)", m.upgrade.Seq, m.upgrade.State)
	}
	seq := 1
	if m.upgrade != nil {
		seq = m.upgrade.Seq + 1
	}
	m.upgrade = &UpgradeStatus{Seq: seq, State: UpgradeChecking, Path: m.exe, From: m.version, Started: m.env.now()}
	m.log.Info("upgrade requested", "seq", seq, "by", source, "path", m.exe, "from", m.version)
	if m.transitionBusy() {
		m.upgradePending = true
		m.log.Info("upgrade waits for the reload or start in flight", "seq", seq)
		return seq, nil
	}
	m.startCheck()
	return seq, nil
}

// transitionBusy: workers are starting, or a reload or a recycle is under
// way; an upgrade
// waits for it (a starting worker's READY read by the old image would be
// lost in the exec).
func (m *Master) transitionBusy() bool {
	if len(m.reloadQueue) > 0 || m.reloadBusy() {
		return true
	}
	for _, s := range m.slots {
		if s.next != nil { // a recycle's replacement
			return true
		}
	}
	for _, p := range m.procs {
		if p.state == stateStarting {
			return true
		}
	}
	return false
}

// maybeStartUpgrade starts a queued upgrade once nothing is in flight.
func (m *Master) maybeStartUpgrade() {
	if m.stopping || m.transitionBusy() {
		if m.stopping && m.execPending {
			m.execPending = false
			m.upgradeAbandoned("the master stopped before the exec")
		}
		return
	}
	switch {
	case m.upgradePending:
		m.upgradePending = false
		m.startCheck()
	case m.execPending:
		m.execPending = false
		m.execUpgrade()
	}
}

// startCheck runs the pre-flight check: the binary at m.exe with the
// master's own arguments and UpgradeCheckEnv. Its exit comes through the
// reaper (evExit), its output through a reader goroutine (evCheckOutput).
func (m *Master) startCheck() {
	r, w, err := os.Pipe()
	if err != nil {
		m.upgradeFailed(metrics.UpgradeCheckFailed, fmt.Errorf("check: pipe: %w", err))
		return
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		w.Close()
		m.upgradeFailed(metrics.UpgradeCheckFailed, fmt.Errorf("check: %w", err))
		return
	}
	env := append(workerEnv(UpgradeCheckEnv+"=1"), "GOTRACEBACK=single")
	pid, err := m.sp.startHelper(m.exe, m.argv, &os.ProcAttr{Env: env, Files: []*os.File{devnull, w, w}})
	devnull.Close()
	w.Close()
	if err != nil {
		r.Close()
		m.upgradeFailed(metrics.UpgradeCheckFailed, fmt.Errorf("check: %s cannot be started: %w", m.exe, err))
		return
	}
	m.check = &preflight{pid: pid, deadline: m.env.now().Add(checkTimeout)}
	m.log.Info("upgrade: checking the new binary", "seq", m.upgrade.Seq, "path", m.exe, "pid", pid)
	go func() {
		defer r.Close()
		out, _ := io.ReadAll(io.LimitReader(r, checkOutputMax))
		_, _ = io.Copy(io.Discard, r) // the rest, so the child never blocks on a full pipe
		m.post(evCheckOutput{pid: pid, out: out})
	}()
}

// onCheckExit records the check's exit; false if pid is not the check.
func (m *Master) onCheckExit(pid int, ws unix.WaitStatus) bool {
	if m.check == nil || m.check.pid != pid {
		return false
	}
	m.check.exited, m.check.status = true, ws
	m.checkDone()
	return true
}

func (m *Master) onCheckOutput(ev evCheckOutput) {
	if m.check == nil || m.check.pid != ev.pid {
		return
	}
	m.check.out, m.check.outDone = ev.out, true
	m.checkDone()
}

// checkTick kills a check that ran out of time; its exit then fails it.
func (m *Master) checkTick(now time.Time) {
	if c := m.check; c != nil && !c.killed && !c.exited && now.After(c.deadline) {
		c.killed = true
		m.log.Warn("upgrade: the new binary's check did not finish in time: SIGKILL", "pid", c.pid, "timeout", checkTimeout)
		_ = m.env.signal(c.pid, unix.SIGKILL)
	}
}

// checkDone goes on once the check has exited and its output is in.
func (m *Master) checkDone() {
	c := m.check
	if !c.exited || !c.outDone {
		return
	}
	m.check = nil
	if m.stopping {
		m.upgradeAbandoned("the master stopped during the check")
		return
	}
	version, err := ParseCheck(c.out, c.status.Exited() && c.status.ExitStatus() == 0)
	if c.killed {
		err = fmt.Errorf("timed out after %s", checkTimeout)
	} else if err != nil && !(c.status.Exited() && c.status.ExitStatus() == 0) {
		err = fmt.Errorf("%s: %w", exitString(c.status), err)
	}
	if err != nil {
		m.upgradeFailed(metrics.UpgradeCheckFailed, fmt.Errorf("check of %s failed: %w", m.exe, err))
		return
	}
	m.upgrade.To = version
	m.log.Info("upgrade: the new binary's check passed", "seq", m.upgrade.Seq, "version", version)
	if m.transitionBusy() {
		// A reload or a start began while the check ran: exec once it is
		// done (maybeStartUpgrade).
		m.execPending = true
		return
	}
	m.execUpgrade()
}

// ParseCheck reads a pre-flight check's output: the version of a binary
// that passed (exited 0 and printed CheckToken with this UpgradeFormat), or
// an error quoting what it said.
func ParseCheck(out []byte, exitedZero bool) (version string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, CheckToken)
		if !ok {
			continue
		}
		format := 0
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "format":
				format, _ = strconv.Atoi(v)
			case "version":
				version = v
			}
		}
		if format != UpgradeFormat {
			return "", fmt.Errorf("it speaks upgrade format %d, this master %d", format, UpgradeFormat)
		}
		if !exitedZero {
			break
		}
		return version, nil
	}
	said := strings.TrimSpace(string(out))
	if len(said) > 2000 {
		said = said[len(said)-2000:]
	}
	if said == "" {
		return "", errors.New("it printed nothing (not a prefork binary?)")
	}
	return "", fmt.Errorf("it said: %s", said)
}

// upgradeFailed ends the upgrade with nothing changed.
func (m *Master) upgradeFailed(result string, err error) {
	m.metrics.Upgrades.WithLabelValues(result).Inc()
	m.upgradeCounts[result]++
	if m.upgrade != nil {
		m.upgrade.State, m.upgrade.Error, m.upgrade.Ended = UpgradeFailed, err.Error(), m.env.now()
	}
	m.log.Error("upgrade failed: the running binary serves on", "result", result, "err", err)
}

// upgradeAbandoned ends an upgrade that a stop overtook: nothing changed,
// and no result is counted (the binary was never found wanting).
func (m *Master) upgradeAbandoned(why string) {
	m.upgrade.State, m.upgrade.Error, m.upgrade.Ended = UpgradeFailed, why, m.env.now()
	m.log.Info("upgrade abandoned", "seq", m.upgrade.Seq, "reason", why)
}

// execUpgrade re-executes the master: returns only if execve failed, with
// everything as it was.
func (m *Master) execUpgrade() {
	m.notify.reloading()
	m.notify.send("STATUS=upgrading: " + m.version + " -> " + m.upgrade.To)
	m.upgrade.State = UpgradeReplacing
	err := m.execWith(m.exe, false)
	m.upgradeFailed(metrics.UpgradeExecFailed, err)
	m.notify.ready()
}

// execWith hands everything over to a new image of path; rollback says the
// new image goes back to the binary before an upgrade. It returns only if
// that failed, having undone what it did.
func (m *Master) execWith(path string, rollback bool) error {
	// The acceptor (handoff mode) hands out what it holds and stops;
	// meanwhile new connections wait in the kernel's queue. The reaper
	// stops too: a worker that exits from here on stays a zombie for the
	// new image to reap, instead of an exit event lost in the exec.
	if m.acc != nil {
		m.acc.handover()
	}
	m.noReap.Store(true)
	st, undo, err := m.handoverState(rollback)
	if err == nil {
		env := []string{UpgradeStateEnv + "=" + st}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, UpgradeStateEnv+"=") {
				env = append(env, kv)
			}
		}
		m.log.Info("upgrade: executing", "path", path, "rollback", rollback, "workers", len(m.procs))
		err = m.sp.exec(path, m.argv, env)
	}
	// Still here: the exec failed.
	undo()
	m.noReap.Store(false)
	m.reap()
	if m.acc != nil {
		if rerr := m.restartAcceptor(); rerr != nil {
			m.log.Error("handoff: cannot restart the acceptor: new connections wait unaccepted", "err", rerr)
		}
	}
	return err
}

// handoverState makes every fd the next image needs inheritable and returns
// the state describing them, and a function undoing it (for a failed exec).
func (m *Master) handoverState(rollback bool) (string, func(), error) {
	var cleared, dups []int
	undo := func() {
		for _, fd := range cleared {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
		for _, fd := range dups {
			_ = unix.Close(fd)
		}
	}
	inherit := func(fd int) (int, error) {
		if fd < 0 {
			return -1, nil
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return -1, os.NewSyscallError("fcntl F_SETFD", err)
		}
		cleared = append(cleared, fd)
		return fd, nil
	}
	// dup gives an inheritable copy of an fd Go's poller owns (a
	// listener's or a conn's).
	dup := func(c any) (int, error) {
		sc, ok := c.(interface {
			SyscallConn() (syscall.RawConn, error)
		})
		if !ok {
			return -1, fmt.Errorf("%T has no fd", c)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return -1, err
		}
		nfd, derr := -1, error(nil)
		if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD, 3) }); err != nil {
			return -1, err
		}
		if derr != nil {
			return -1, os.NewSyscallError("fcntl F_DUPFD", derr)
		}
		dups = append(dups, nfd)
		return nfd, nil
	}
	fail := func(err error) (string, func(), error) {
		undo()
		return "", func() {}, fmt.Errorf("upgrade: preparing the handover: %w", err)
	}

	st := upgradeState{
		Format: UpgradeFormat, Rollback: rollback, Exe: m.exe, Argv: m.argv, OldExe: -1,
		Started: m.started, Mode: m.ls.mode, Addrs: m.ls.addrs, Slots: m.ls.slots,
		Desired: m.desired, Reloads: m.reloads, Upgrades: m.upgradeCounts,
		AccessLog: -1, RootDir: -1, Metrics: -1, Admin: -1,
	}
	if m.upgrade != nil {
		st.Record = *m.upgrade
	}
	var err error
	for _, fd := range m.ls.shared {
		if _, err = inherit(fd); err != nil {
			return fail(err)
		}
	}
	st.Shared = m.ls.shared
	for _, g := range m.ls.groups {
		for _, fd := range g.FDs() {
			if _, err = inherit(fd); err != nil {
				return fail(err)
			}
		}
		st.Groups = append(st.Groups, groupState{FDs: g.FDs(), Live: g.Live()})
	}
	if st.AccessLog, err = inherit(m.accessLog); err != nil {
		return fail(err)
	}
	if st.RootDir, err = inherit(m.rootDir); err != nil {
		return fail(err)
	}
	if m.http != nil {
		if st.Metrics, err = dup(m.http.ln); err != nil {
			return fail(fmt.Errorf("metrics listener: %w", err))
		}
	}
	if m.admin != nil {
		if st.Admin, err = dup(m.admin); err != nil {
			return fail(fmt.Errorf("admin socket: %w", err))
		}
	}
	// The binary now running, for a rollback: /proc/self/exe opens it
	// even when the file it came from has been replaced or removed.
	if !rollback {
		fd, err := unix.Open("/proc/self/exe", unix.O_RDONLY, 0)
		if err != nil {
			return fail(os.NewSyscallError("open /proc/self/exe", err))
		}
		dups = append(dups, fd)
		st.OldExe = fd
	}
	retiredIndex := map[*retired]int{}
	for _, p := range m.procs {
		if r := p.retired; r != nil {
			if _, ok := retiredIndex[r]; !ok {
				retiredIndex[r] = len(st.Retired)
				st.Retired = append(st.Retired, retiredState{Slot: r.slot, FDs: r.fds})
				for _, fd := range r.fds {
					if _, err = inherit(fd); err != nil {
						return fail(err)
					}
				}
			}
		}
	}
	for _, s := range m.slots {
		st.SlotStates = append(st.SlotStates, slotState{Index: s.index, Gen: s.gen, Restarts: s.restarts, Crashes: s.crashes, Paused: s.paused})
	}
	for _, p := range m.procs {
		u, ok := p.ctl.(unixControl)
		if !ok {
			return fail(fmt.Errorf("worker %d: control socket of type %T", p.pid, p.ctl))
		}
		ctl, err := dup(u.c)
		if err != nil {
			return fail(fmt.Errorf("worker %d's control socket: %w", p.pid, err))
		}
		ps := procHandover{PID: p.pid, Slot: p.slot, Gen: p.gen, Ctl: ctl, Ready: p.state == stateReady,
			BinID: p.binID, Conns: p.conns, Started: p.started, ReadyAt: p.readyAt, KillAt: p.killAt}
		if s := m.slots[p.slot]; s != nil && s.cur == p {
			ps.Current = true
		}
		if p.retired != nil {
			ps.Retired = 1 + retiredIndex[p.retired]
		}
		if p.peer != nil {
			ps.Handed, ps.Closed = p.peer.handed, p.peer.closed.Load()
		}
		st.Procs = append(st.Procs, ps)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	return string(b), undo, nil
}

// takeUpgradeState reads and removes UpgradeStateEnv: nil when this image
// was not started by an upgrade.
func takeUpgradeState() (*upgradeState, error) {
	v, ok := os.LookupEnv(UpgradeStateEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(UpgradeStateEnv)
	var st upgradeState
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return nil, fmt.Errorf("upgrade: the state from the previous image: %w", err)
	}
	if st.Format != UpgradeFormat {
		return nil, fmt.Errorf("upgrade: state format %d from the previous image, this binary reads %d", st.Format, UpgradeFormat)
	}
	return &st, nil
}

// fds lists every fd the state hands over.
func (st *upgradeState) fds() []int {
	var fds []int
	fds = append(fds, st.Shared...)
	for _, g := range st.Groups {
		fds = append(fds, g.FDs...)
	}
	for _, r := range st.Retired {
		fds = append(fds, r.FDs...)
	}
	for _, p := range st.Procs {
		fds = append(fds, p.Ctl)
	}
	for _, fd := range []int{st.AccessLog, st.RootDir, st.Metrics, st.Admin, st.OldExe} {
		if fd >= 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

// newAdopted is New for an image started by an upgrade: every socket comes
// from the previous image, nothing is bound.
func newAdopted(cfg Config, st *upgradeState) (*Master, error) {
	// Close-on-exec again: they are this image's own now, and a worker
	// inherits only what the spawner places.
	for _, fd := range st.fds() {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("upgrade: adopting fd %d: %w", fd, os.NewSyscallError("fcntl F_SETFD", err))
		}
	}
	ls := &listeners{mode: st.Mode, addrs: st.Addrs, shared: st.Shared, slots: st.Slots}
	if ls.slots == nil {
		ls.slots = map[int][]int{}
	}
	for _, g := range st.Groups {
		grp, err := reuseport.AdoptGroup(g.FDs, g.Live)
		if err != nil {
			return nil, fmt.Errorf("upgrade: adopting a reuseport group: %w", err)
		}
		ls.groups = append(ls.groups, grp)
	}
	cfg.Mode = st.Mode // socket activation may have made it shared
	m := newMaster(cfg, ls)
	m.accessLog, m.rootDir = st.AccessLog, st.RootDir
	m.adopt = st
	m.exe, m.argv, m.oldExe = st.Exe, st.Argv, st.OldExe
	for r, n := range st.Upgrades {
		m.upgradeCounts[r] = n
		m.metrics.Upgrades.WithLabelValues(r).Add(float64(n))
	}
	m.reloads = st.Reloads
	m.metrics.Reloads.Add(float64(st.Reloads))
	rec := st.Record
	m.upgrade = &rec
	if m.cfg.Mode == ModeHandoff {
		if err := m.newHandoff(); err != nil {
			return nil, err
		}
	}
	if st.Metrics >= 0 {
		ln, err := fileListener(st.Metrics, "metrics")
		if err != nil {
			return nil, fmt.Errorf("upgrade: adopting the metrics listener: %w", err)
		}
		m.http = m.httpServerOn(ln)
	} else if cfg.MetricsListen != "" {
		var err error
		if m.http, err = m.newHTTPServer(cfg.MetricsListen, cfg.MetricsFallback); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// fileListener makes a net.Listener of an inherited listening fd (which it
// takes over).
func fileListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileListener(f)
}

// adoptWorkers makes the previous image's workers this one's, then starts
// what the upgrade does next: replacing them (an upgrade), or, after a
// rollback, replacing those the failed binary started.
func (m *Master) adoptWorkers() {
	st := m.adopt
	m.adopt = nil
	now := m.env.now()
	m.desired = st.Desired
	// systemd heard READY=1 from the first image; the next one it hears
	// is the upgrade's end (reloadNext, or the rollback's replacements).
	m.readyOnce = true
	for _, ss := range st.SlotStates {
		m.slots[ss.Index] = &slot{index: ss.Index, gen: ss.Gen, restarts: ss.Restarts, crashes: ss.Crashes, paused: ss.Paused}
	}
	retireds := make([]*retired, len(st.Retired))
	for i, r := range st.Retired {
		retireds[i] = &retired{slot: r.Slot, fds: r.FDs}
	}
	for _, ps := range st.Procs {
		f := os.NewFile(uintptr(ps.Ctl), "control")
		fc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			// Without its control socket the worker cannot be told to
			// stop: end it, and its slot starts another.
			m.log.Error("upgrade: cannot adopt a worker's control socket: killing it", "pid", ps.PID, "err", err)
			_ = m.env.signal(ps.PID, unix.SIGKILL)
			continue
		}
		ctl := unixControl{fc.(*net.UnixConn)}
		// maxRequests 0: its limit was the previous image's, and an upgrade
		// (or a rollback's replacements) replaces it anyway.
		p := &proc{pid: ps.PID, slot: ps.Slot, gen: ps.Gen, ctl: ctl, state: stateStopping, started: ps.Started,
			readyAt: ps.ReadyAt, lastHB: now, killAt: ps.KillAt, binID: ps.BinID, conns: ps.Conns,
			metrics: make(chan metricsReply, 1), requests: -1, maxRequests: 0}
		if ps.Ready {
			p.state = stateReady
		}
		m.procs[p.pid] = p
		if ps.Retired > 0 && ps.Retired <= len(retireds) {
			r := retireds[ps.Retired-1]
			p.retired = r
			r.procs++
		}
		if s := m.slots[p.slot]; s != nil && ps.Current && p.retired == nil {
			s.cur = p
		}
		if p.peer = m.newPeer(p.pid, p.slot, ctl); p.peer != nil {
			p.peer.handed = ps.Handed
			p.peer.closed.Store(ps.Closed)
			if p.state == stateReady {
				m.handoffReady(p)
			}
		}
		go m.readControl(p.pid, ctl, p.metrics, p.peer)
		if err := unix.Kill(p.pid, 0); err == unix.ESRCH {
			// Gone and reaped before the exec (it cannot be: the old
			// image stopped reaping first); its exit is the news.
			m.post(evExit{pid: p.pid, status: 1 << 8})
		}
		m.log.Info("upgrade: adopted worker", "slot", p.slot, "gen", p.gen, "pid", p.pid, "state", p.state.String())
	}
	for _, r := range retireds {
		if r.procs == 0 {
			m.closeRetired(r)
		}
	}
	for _, s := range m.slots {
		if s.cur == nil {
			m.scheduleRestart(s)
		}
	}
	// Zombies of workers that exited during the exec.
	m.reap()

	if st.Rollback {
		m.upgrade.Ended = now
		m.log.Error("upgrade rolled back: the previous binary runs the master again",
			"seq", m.upgrade.Seq, "version", m.version, "failed_version", m.upgrade.To, "reason", m.upgrade.Error)
		m.metrics.Upgrades.WithLabelValues(metrics.UpgradeRolledBack).Inc()
		m.upgradeCounts[metrics.UpgradeRolledBack]++
		m.replaceAll(func(p *proc) bool { return p.binID != m.binID })
		return
	}
	m.upgrading = true
	m.log.Info("upgrade: the new binary runs the master; replacing the workers", "seq", m.upgrade.Seq,
		"from", m.upgrade.From, "to", m.version, "workers", len(m.procs))
	m.upgrade.To = m.version
	m.replaceAll(func(*proc) bool { return true })
}

// replaceAll replaces, slot by slot as a reload does, the serving workers
// that match, without counting a HUP reload.
func (m *Master) replaceAll(match func(*proc) bool) {
	m.reloadQueue = m.reloadQueue[:0]
	for k, s := range m.slots {
		if s.cur != nil && match(s.cur) {
			m.reloadQueue = append(m.reloadQueue, k)
		}
	}
	sort.Ints(m.reloadQueue)
	if !m.reloadBusy() {
		m.reloadNext()
	}
}

// upgradeReplaced ends an upgrade whose workers all run the new binary
// (reloadNext, when the queue is empty).
func (m *Master) upgradeReplaced() {
	if !m.upgrading {
		return
	}
	m.upgrading = false
	m.upgrade.State, m.upgrade.Ended = UpgradeDone, m.env.now()
	m.metrics.Upgrades.WithLabelValues(metrics.UpgradeOK).Inc()
	m.upgradeCounts[metrics.UpgradeOK]++
	m.log.Info("upgrade done: master and workers run the new binary", "seq", m.upgrade.Seq,
		"from", m.upgrade.From, "to", m.version, "took", m.upgrade.Ended.Sub(m.upgrade.Started).Round(time.Millisecond))
	if m.oldExe >= 0 {
		_ = closeFD(m.oldExe)
		m.oldExe = -1
	}
}

// rollback goes back to the binary before the upgrade, whose fd the
// previous image passed: its image adopts everything, including the workers
// the new binary did start, and replaces those.
func (m *Master) rollback(reason string) {
	m.upgrading = false
	m.reloadQueue = nil
	m.upgrade.Error = reason
	if m.oldExe < 0 {
		m.upgrade.State, m.upgrade.Ended = UpgradeFailed, m.env.now()
		m.log.Error("upgrade failed and cannot roll back (no previous binary): the new master keeps the workers it has", "reason", reason)
		return
	}
	m.upgrade.State = UpgradeRolledBack
	m.log.Error("upgrade: the new binary's workers do not start; rolling back to the previous binary", "reason", reason)
	err := m.execWith("/proc/self/fd/"+strconv.Itoa(m.oldExe), true)
	m.upgrade.State, m.upgrade.Ended = UpgradeFailed, m.env.now()
	m.upgrade.Error = reason + "; rollback failed: " + err.Error()
	m.metrics.Upgrades.WithLabelValues(metrics.UpgradeExecFailed).Inc()
	m.upgradeCounts[metrics.UpgradeExecFailed]++
	m.log.Error("upgrade: rollback failed; the new master keeps the workers it has", "err", err)
	m.notify.ready()
}

// binaryID identifies the binary this image runs (device and inode of
// /proc/self/exe), so a rollback can tell its own workers from those of the
// binary it left.
func binaryID() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// originalExe is the path the master re-executes on upgrade: where its
// binary was when it started (a file replaced since reads "PATH (deleted)").
func originalExe() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return strings.TrimSuffix(p, " (deleted)")
}

// version is this build's, for logs and status.
func version() string { return buildinfo.String() }
