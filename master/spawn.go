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
}

type spawnReq struct {
	fn    func()
	reply chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the master
		for r := range s.reqs {
			r.fn()
			close(r.reply)
		}
	}()
	return s
}

func (s *spawner) close() { close(s.reqs) }

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
		attr.Sys.Credential = cfg.cred
	}
	argv := append([]string{os.Args[0]}, cfg.WorkerArgs...)
	argv = append(argv, "slot="+strconv.Itoa(spec.Slot)) // shows in ps

	var proc *os.Process
	r := spawnReq{fn: func() { proc, err = os.StartProcess(cfg.Exe, argv, attr) }, reply: make(chan struct{})}
	s.reqs <- r
	<-r.reply
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

// workerEnv is the master's environment for a worker: systemd's per-process
// variables are the master's alone (a worker that saw NOTIFY_SOCKET or
// LISTEN_FDS would act on them), and the spec is added.
func workerEnv(spec string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", wire.SpecEnv:
			continue
		}
		env = append(env, kv)
	}
	return append(env, spec)
}
