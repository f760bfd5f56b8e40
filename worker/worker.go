package worker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/cpus"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/wire"
)

// retireSettle is how long a retiring worker keeps accepting after the
// master has steered new connections away: handshakes already under way
// complete into this slot's queue within a round trip.
const retireSettle = 300 * time.Millisecond

// Run is the worker role: the process the master re-executes into. Given the
// Spec the master sent (wire.ReadSpec), it checks the inherited fds, builds
// the protocol handler with newHandler, and serves until the master says stop
// or goes away. log is built from spec.Log by the caller.
func Run(spec wire.Spec, newHandler func(wire.Settings) loop.Handler, log *slog.Logger) error {
	log = log.With("slot", spec.Slot, "gen", spec.Generation, "pid", os.Getpid())
	ctl := wire.FDControl
	if err := checkFD(ctl, unix.SOCK_SEQPACKET, false); err != nil {
		return fmt.Errorf("worker: control fd %d: %w", ctl, err)
	}
	// Close-on-exec for everything inherited, so nothing leaks into a program
	// a handler might run.
	if _, err := unix.FcntlInt(uintptr(ctl), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return os.NewSyscallError("fcntl F_SETFD", err)
	}
	if err := unix.SetNonblock(ctl, true); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}

	setProcs()
	if spec.CPU != nil {
		if err := cpus.PinProcess(*spec.CPU); err != nil {
			log.Warn("cannot pin the worker", "cpu", *spec.CPU, "err", err)
		}
	}

	switch {
	case spec.AccessLogFD:
		fd := spec.FDAccessLog()
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("worker: access log fd %d: %w", fd, os.NewSyscallError("fcntl F_SETFD", err))
		}
		spec.Settings.SetAccessLogWriter(os.NewFile(uintptr(fd), spec.AccessLog))
	case spec.AccessLog == "-":
		spec.Settings.SetAccessLogWriter(os.Stdout)
	}
	if spec.RootFD {
		fd := spec.FDRoot()
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("worker: root fd %d: %w", fd, os.NewSyscallError("fcntl F_SETFD", err))
		}
		spec.Settings.SetRootFD(fd)
	}
	h := newHandler(spec.Settings)
	var l *loop.Loop
	// served is what the heartbeat reports as requests served, for the
	// master's --max-requests: the protocol's own count, or for a protocol
	// that keeps none (not a Requester), the connections accepted: every
	// connection carries at least one request.
	served := func() uint64 { return l.Accepted() }
	if r, ok := h.(Requester); ok {
		served = r.Requests
	}
	var ho *handoff // connections handed over the control socket (handoff.go)
	l, err := loop.New(loop.Config{
		Handler:       h,
		IdleTimeout:   spec.IdleTimeout,
		HeaderTimeout: spec.HeaderTimeout,
		WriteTimeout:  spec.WriteTimeout,
		MaxConns:      maxConns(spec.MaxConns, log),
		MaxInput:      spec.MaxInput(),
		Logger:        log,
		TickInterval:  spec.Heartbeat,
		// The heartbeat carries the open connection count (for STATUS=)
		// and the requests served (for --max-requests).
		OnTick: func() {
			send(ctl, wire.Heartbeat(l.Conns(), served()))
			ho.report()
		},
		OnTurn: recycleReport(spec.RecycleAfter, served, func() {
			send(ctl, wire.Heartbeat(l.Conns(), served()))
		}),
	})
	if err != nil {
		return err
	}
	ho = newHandoff(ctl, l, log, spec.Handoff)
	reg := newRegistry(func() snapshot {
		s := snapshot{Stats: l.Stats(), Proto: spec.Proto}
		if r, ok := h.(Requester); ok {
			s.Requests = r.Requests()
		}
		return s
	})
	if col, ok := h.(prometheus.Collector); ok {
		// The protocol's own series (httpd: requests by status class,
		// durations, in flight), gathered on the loop thread like the rest.
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("worker: the protocol's metrics: %w", err)
		}
	}
	if spec.Handoff {
		reg.MustRegister(ho.collector())
	}
	for i := range spec.Listeners {
		fd := wire.FDFirstListener + i
		if err := checkFD(fd, unix.SOCK_STREAM, true); err != nil {
			return fmt.Errorf("worker: listener fd %d (%s): %w", fd, spec.Listeners[i].Addr, err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return os.NewSyscallError("fcntl F_SETFD", err)
		}
		if err := l.AddListener(fd, spec.Exclusive); err != nil {
			return err
		}
	}

	stopping := false
	stop := func(how string) {
		if stopping && how != wire.MsgQuit {
			return
		}
		stopping = true
		log.Debug("stopping", "how", how)
		switch how {
		case wire.MsgQuit:
			l.Stop()
		case wire.MsgRetire:
			l.AfterFunc(retireSettle, func() { l.Shutdown(spec.GracefulTimeout) })
		default:
			l.Shutdown(spec.GracefulTimeout)
		}
	}
	var buf [512]byte
	if err := l.Watch(ctl, func(uint32) {
		for {
			// recvmsg, not read: an FDS message's fds would be lost to read(2).
			n, fds, trunc, err := ho.recv(buf[:])
			if n == 0 && len(fds) > 0 {
				closeFDs(fds) // never sent; and a 0-byte datagram is EOF below
			}
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return
			case err != nil || n == 0:
				// EOF or error: the master is gone. Workers never outlive it.
				log.Warn("control socket closed: master gone, stopping now")
				_ = l.Unwatch(ctl)
				stop(wire.MsgQuit)
				return
			}
			if ho.take(buf[:n], fds, trunc) {
				continue
			}
			msg := bytes.TrimSpace(buf[:n])
			if id, ok := wire.ParseMetricsRequest(msg); ok {
				// Gathered on the loop thread, so the snapshot reads the
				// loop's counters with nothing running beside it.
				sendMetrics(ctl, id, reg, log)
				continue
			}
			switch how := string(msg); how {
			case wire.MsgStop, wire.MsgQuit, wire.MsgRetire:
				stop(how)
			default:
				log.Warn("unknown control message", "msg", how)
			}
		}
	}); err != nil {
		return err
	}

	// Signals straight to a worker (a terminal's ^C reaches the whole process
	// group) mean the same as from the master; the master decides the
	// stop, so SIGINT/SIGQUIT are ignored here and SIGTERM is a graceful stop.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			l.Post(func() { stop(wire.MsgStop) })
		case <-l.Done():
		}
	}()

	// PREFORK_WORKER_CPUPROFILE=DIR: profile the worker until it stops
	// gracefully (for benchmarks: go tool pprof DIR/worker-*.pprof).
	if dir := os.Getenv("PREFORK_WORKER_CPUPROFILE"); dir != "" {
		if stopProfile, err := startCPUProfile(dir, spec.Slot); err != nil {
			log.Warn("PREFORK_WORKER_CPUPROFILE: no profile", "err", err)
		} else {
			defer stopProfile()
		}
	}

	// The first turn of the loop runs this: the listeners are in the epoll set.
	l.Post(func() { send(ctl, []byte(wire.MsgReady)) })
	log.Debug("worker serving", "listeners", len(spec.Listeners))
	if err := l.Run(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log.Debug("worker stopped")
	return nil
}

// send writes one control datagram. EAGAIN drops it: a master that does not
// read its control socket will notice the missing heartbeats instead, and a
// worker must never block on its master.
func send(fd int, msg []byte) {
	_, _ = unix.Write(fd, msg)
}

// startCPUProfile profiles the worker into dir/worker-SLOT-PID.pprof until
// the returned stop runs.
func startCPUProfile(dir string, slot int) (stop func(), err error) {
	path := fmt.Sprintf("%s/worker-%d-%d.pprof", dir, slot, os.Getpid())
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// sendMetrics answers a METRICS request: "METRICS <id>\n" and the encoded
// registry, in one datagram.
func sendMetrics(ctl int, id string, reg *prometheus.Registry, log *slog.Logger) {
	body, err := metrics.Encode(reg)
	if err != nil {
		log.Warn("gathering metrics", "err", err)
		return
	}
	msg := wire.MetricsReply(id, body)
	if _, err := unix.Write(ctl, msg); err != nil {
		// EAGAIN: the master is not reading; it will report this slot
		// missing from the scrape. EMSGSIZE: the socket buffer is too small.
		log.Warn("sending metrics", "err", os.NewSyscallError("write", err), "bytes", len(msg))
	}
}

// checkFD verifies that fd is an open socket of type typ (and, with
// listening, in the listening state) so a mis-wired start fails loudly.
func checkFD(fd, typ int, listening bool) error {
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	if got != typ {
		return fmt.Errorf("socket type %d, want %d", got, typ)
	}
	if listening {
		acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil {
			return os.NewSyscallError("getsockopt SO_ACCEPTCONN", err)
		}
		if acc != 1 {
			return errors.New("not a listening socket")
		}
	}
	return nil
}

// setProcs gives the worker one P unless GOMAXPROCS is set in its
// environment. A worker runs one loop goroutine; a second P would only let
// the scheduler move that goroutine between threads when it yields, and wake
// a spinning thread to look for work each time. With one P a yield is a trip
// through the scheduler on the same thread (see BENCHMARKS.md).
func setProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// maxConns is --max-conns, or with 0 the fd limit minus wire.ConnsReserve:
// at that many connections the loop stops accepting rather than meet EMFILE.
func maxConns(n int, log *slog.Logger) int {
	if n > 0 {
		return n
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("no --max-conns: cannot read the fd limit", "err", os.NewSyscallError("getrlimit", err))
		return 0
	}
	return int(max(int64(min(lim.Cur, 1<<30))-wire.ConnsReserve, 1))
}

// recycleReport returns the loop's OnTurn for --max-requests: the turn the
// worker has served limit requests it heartbeats at once (beat), so the
// master starts its replacement then rather than at the next tick, up to a
// second and many requests later. Once: the master has what it needs, and
// the ticks go on reporting. Nil (no OnTurn) without a limit.
func recycleReport(limit uint64, served func() uint64, beat func()) func() {
	if limit == 0 {
		return nil
	}
	reported := false
	return func() {
		if !reported && served() >= limit {
			reported = true
			beat()
		}
	}
}
