package master

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/wire"
)

// spawner starts workers from one OS thread that never exits. Pdeathsig is
// delivered when the thread that forked the child dies, not the process:
// forking from a goroutine that can move between threads, one of which the
// runtime might retire, could kill a healthy worker.
type spawner struct {
	reqs chan spawnReq
	// confined: the spawner's thread has no_new_privs and no inheritable or
	// ambient capabilities (confineThread). Only read and written there.
	confined bool
}

type spawnReq struct {
	fn    func()
	reply chan struct{}
}

// newSpawner starts a spawner on a goroutine locked to a thread of its own.
func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the master
		s.serve()
	}()
	return s
}

// newInlineSpawner returns a spawner whose requests the caller serves
// (serve), on the thread it is locked to: the main thread (Run).
func newInlineSpawner() *spawner { return &spawner{reqs: make(chan spawnReq)} }

// serve runs requests until close.
func (s *spawner) serve() {
	for r := range s.reqs {
		r.fn()
		close(r.reply)
	}
}

func (s *spawner) close() { close(s.reqs) }

// do runs fn on the spawner's thread and returns when it has.
func (s *spawner) do(fn func()) {
	r := spawnReq{fn: fn, reply: make(chan struct{})}
	s.reqs <- r
	<-r.reply
}

// exec replaces the process image with path (an upgrade), from the
// spawner's thread: the thread every worker was forked from survives
// execve (it becomes the only one), so no worker gets its Pdeathsig. It
// returns only if execve failed.
func (s *spawner) exec(path string, argv, env []string) error {
	var err error
	s.do(func() { err = unix.Exec(path, argv, env) })
	return fmt.Errorf("execve %s: %w", path, os.NewSyscallError("execve", err))
}

// startHelper starts a process that is not a worker (an upgrade's check):
// no Pdeathsig, no credential switch; reaped, like every child, by the
// master's wait4(-1).
func (s *spawner) startHelper(path string, argv []string, attr *os.ProcAttr) (int, error) {
	var proc *os.Process
	var err error
	s.do(func() { proc, err = os.StartProcess(path, argv, attr) })
	if err != nil {
		return 0, err
	}
	pid := proc.Pid
	_ = proc.Release()
	return pid, nil
}

// start re-executes the master's binary as a worker for spec, with the control
// socket at wire.FDControl and the listeners from wire.FDFirstListener.
// It returns the pid and the master's end of the control socket.
func (s *spawner) start(cfg *Config, spec wire.Spec, listeners []int) (int, *net.UnixConn, error) {
	// SOCK_SEQPACKET: a message per datagram and EOF when the peer dies.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, os.NewSyscallError("socketpair", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "control")
	theirs := os.NewFile(uintptr(pair[1]), "control-worker")
	defer theirs.Close()

	specEnv, err := spec.Env()
	if err != nil {
		ours.Close()
		return 0, nil, err
	}
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr, theirs}
	for i, fd := range listeners {
		// A close-on-exec duplicate for os.StartProcess to place at its
		// number; closed once the child has its copy. (os.NewFile on the
		// master's own fd would let a finalizer close the listener.)
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			ours.Close()
			return 0, nil, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
		}
		f := os.NewFile(uintptr(dup), fmt.Sprintf("inherited-%d", i))
		defer f.Close()
		files = append(files, f)
	}
	attr := &os.ProcAttr{
		Env:   workerEnv(specEnv),
		Files: files,
		Sys: &syscall.SysProcAttr{
			// Workers never outlive the master (also: EOF on the control socket).
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cfg.cred != nil { // --user/--group, resolved by Config.Validate
		// setgroups(Groups: never nil, so root's are gone), setgid, setuid:
		// as root these set the real, effective, saved and filesystem ids,
		// and the kernel clears the permitted, effective and ambient
		// capabilities when no uid is 0 any more.
		attr.Sys.Credential = cfg.cred
	}
	argv := append([]string{os.Args[0]}, cfg.WorkerArgs...)
	argv = append(argv, "slot="+strconv.Itoa(spec.Slot)) // shows in ps

	var proc *os.Process
	s.do(func() {
		if cfg.cred != nil && !s.confined {
			if err = confineThread(); err != nil {
				return // no worker runs as --user without it
			}
			s.confined = true
		}
		proc, err = os.StartProcess(cfg.Exe, argv, attr)
	})
	if err != nil {
		ours.Close()
		return 0, nil, fmt.Errorf("start worker: %w", err)
	}
	pid := proc.Pid
	// The master reaps with wait4(-1); Release only frees the handle (pidfd).
	_ = proc.Release()

	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, nil, fmt.Errorf("control socket: %w", err)
	}
	return pid, fc.(*net.UnixConn), nil
}

// confineThread gives the calling thread (the spawner's) what SysProcAttr
// cannot ask for: no_new_privs, and empty inheritable and ambient capability
// sets. A child is a copy of the thread that forks it, and these survive the
// setuid and the execve, so every worker runs with them from its first
// instruction, on every one of its threads. The worker itself could not do
// as much: prctl and capset act on one thread, and with cgo linked in (it
// is: os/user, net) syscall.AllThreadsSyscall is not available.
//
//   - no_new_privs: no execve in a worker can gain a privilege (setuid and
//     setgid bits, file capabilities); it cannot be unset.
//   - inheritable: setuid keeps it, so a master started with one (systemd's
//     CapabilityInheritable=, AmbientCapabilities=) would hand it on.
//   - ambient: setuid clears it, unless the master runs with
//     SECBIT_NO_SETUID_FIXUP; then the worker would keep the capabilities
//     through its execve.
//
// The master's other threads keep what they have, and this one its
// permitted and effective sets: it still needs CAP_SETUID and CAP_SETGID
// for the next child's switch.
func confineThread() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl PR_SET_NO_NEW_PRIVS", err)
	}
	// EINVAL: a kernel before 4.3 has no ambient set to clear.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return os.NewSyscallError("prctl PR_CAP_AMBIENT_CLEAR_ALL", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit words per set
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}

// workerEnv is the master's environment for a worker: systemd's per-process
// variables are the master's alone (a worker that saw NOTIFY_SOCKET or
// LISTEN_FDS would act on them), and the spec is added.
func workerEnv(spec string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", wire.SpecEnv,
			UpgradeStateEnv, UpgradeCheckEnv:
			continue
		}
		env = append(env, kv)
	}
	return append(env, spec)
}
