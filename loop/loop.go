package loop

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config tunes a Loop. The zero value of every field but Handler means its
// default.
type Config struct {
	// Handler is the protocol. Required.
	Handler Handler

	// ReadBufferSize is the size of the loop's one read buffer, shared by all
	// its connections. Default 64 KiB.
	ReadBufferSize int

	// ReadBudget bounds the bytes read from one connection per loop turn, so a
	// fast sender cannot starve the others; the rest is read on the next turn.
	// Default 4 × ReadBufferSize.
	ReadBudget int

	// AcceptBudget bounds the connections accepted per listener wake-up.
	// Default 64.
	AcceptBudget int

	// HighWater is the pending output, in bytes, above which the loop stops
	// reading from a connection until the output drains to LowWater.
	// Defaults 256 KiB and HighWater/4.
	HighWater int
	LowWater  int

	// MaxInput bounds a connection's unconsumed input; past it the connection
	// is closed with ReasonOverflow. Protocols enforce their own, smaller,
	// limits; this is the loop's guard. Default 1 MiB.
	MaxInput int

	// IdleTimeout closes connections that sent nothing for this long
	// (ReasonTimeout). Zero disables it. Checked by a sweep every second or
	// IdleTimeout/4, whichever is shorter, so it costs nothing per request.
	IdleTimeout time.Duration

	// LingerTimeout bounds a lingering close. Default 5 s.
	LingerTimeout time.Duration

	// TickInterval and OnTick: OnTick runs on the loop's thread at least every
	// TickInterval (epoll_wait never sleeps longer), so a heartbeat sent from
	// it stops when the loop is stuck. Default 1 s when OnTick is set.
	TickInterval time.Duration
	OnTick       func()

	// Logger for rare events (accept errors). Default slog.Default().
	Logger *slog.Logger
}

func (cfg *Config) setDefaults() {
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = 64 << 10
	}
	if cfg.ReadBudget <= 0 {
		cfg.ReadBudget = 4 * cfg.ReadBufferSize
	}
	if cfg.AcceptBudget <= 0 {
		cfg.AcceptBudget = 64
	}
	if cfg.HighWater <= 0 {
		cfg.HighWater = 256 << 10
	}
	if cfg.LowWater <= 0 || cfg.LowWater > cfg.HighWater {
		cfg.LowWater = cfg.HighWater / 4
	}
	if cfg.MaxInput <= 0 {
		cfg.MaxInput = 1 << 20
	}
	if cfg.LingerTimeout <= 0 {
		cfg.LingerTimeout = 5 * time.Second
	}
	if cfg.OnTick != nil && cfg.TickInterval <= 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// epoll_event tags, kept in the Pad half of the event's data word, so a
// dispatch is one switch with no lookup for anything but connections.
const (
	tagConn int32 = iota
	tagListener
	tagWake
	tagWatch
)

const (
	connEvents     = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	listenerEvents = unix.EPOLLIN // level-triggered: a budget-limited accept leaves the rest signalled
	maxEvents      = 1024
	bufFreeMax     = 256      // buffers kept on the free list
	bufKeepMax     = 64 << 10 // buffers larger than this go back to the GC
	bufMin         = 4 << 10
)

type listener struct {
	fd    int
	tcp   bool
	added bool
	excl  bool
}

// Loop is one Reactor: one epoll set served by one goroutine locked to its OS
// thread. See the package documentation for the model.
type Loop struct {
	cfg Config
	h   Handler
	log *slog.Logger

	epfd   int
	wakefd int // eventfd: Post and Shutdown wake the loop through it
	spare  int // a reserved fd, given up to shed a connection on EMFILE

	events []unix.EpollEvent
	rbuf   []byte // the one read buffer
	wbuf   []byte // writes made during OnData, sent as one write(2)
	cur    *Conn  // the connection whose OnData is running

	conns     []*Conn // indexed by fd
	nconns    int
	listeners []listener
	watches   map[int]func(events uint32)
	ready     []*Conn // connections with input left over after their read budget
	readyNext []*Conn
	timers    timerHeap
	bufFree   [][]byte

	base    time.Time
	now     int64 // nanoseconds since base at the start of the turn
	endNow  int64 // ... and at its end, for the next epoll_wait's timeout
	wallNow time.Time

	// tasksMu guards tasks, woken and wakeClosed: Post runs on any
	// goroutine, and the eventfd must not be written once closeAll has
	// closed it (its number could belong to another file by then).
	tasksMu    sync.Mutex
	tasks      []func()
	taskRun    []func()
	woken      bool
	wakeClosed bool

	running  atomic.Bool
	draining bool
	done     bool
	err      error
	runDone  chan struct{}

	stats Stats
}

// New creates a loop: its epoll set, eventfd and spare fd. Listeners are added
// with AddListener; Run serves them.
func New(cfg Config) (*Loop, error) {
	if cfg.Handler == nil {
		return nil, errors.New("loop: Config.Handler is nil")
	}
	cfg.setDefaults()
	l := &Loop{
		cfg:     cfg,
		h:       cfg.Handler,
		log:     cfg.Logger,
		epfd:    -1,
		wakefd:  -1,
		spare:   -1,
		events:  make([]unix.EpollEvent, 128),
		rbuf:    make([]byte, cfg.ReadBufferSize),
		wbuf:    make([]byte, 0, 16<<10),
		watches: map[int]func(uint32){},
		base:    time.Now(),
		runDone: make(chan struct{}),
	}
	l.wallNow = l.base
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.closeAll()
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err = epollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.wakefd,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wakefd), Pad: tagWake}); err != nil {
		l.closeAll()
		return nil, err
	}
	if err = l.openSpare(); err != nil {
		l.closeAll()
		return nil, err
	}
	if cfg.OnTick != nil {
		l.AfterFunc(cfg.TickInterval, l.tick)
	}
	if cfg.IdleTimeout > 0 {
		l.AfterFunc(l.sweepInterval(), l.sweepIdle)
	}
	return l, nil
}

func (l *Loop) openSpare() error {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open /dev/null", err)
	}
	l.spare = fd
	return nil
}

// AddListener makes the loop accept connections from the listening socket fd
// and takes ownership of it: the loop closes its copy when it stops accepting.
// With exclusive, the fd is registered with EPOLLEXCLUSIVE, for a listener
// shared by several processes' loops (only some of them are woken per
// connection). Call it before Run, or on the loop thread.
func (l *Loop) AddListener(fd int, exclusive bool) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	ln := listener{fd: fd, excl: exclusive}
	if sa, err := unix.Getsockname(fd); err == nil {
		switch sa.(type) {
		case *unix.SockaddrInet4, *unix.SockaddrInet6:
			ln.tcp = true
		}
	}
	if err := l.registerListener(&ln); err != nil {
		return err
	}
	l.listeners = append(l.listeners, ln)
	return nil
}

func (l *Loop) registerListener(ln *listener) error {
	ev := uint32(listenerEvents)
	if ln.excl {
		ev |= unix.EPOLLEXCLUSIVE
	}
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, ln.fd,
		&unix.EpollEvent{Events: ev, Fd: int32(ln.fd), Pad: tagListener}); err != nil {
		return fmt.Errorf("loop: add listener fd %d: %w", ln.fd, err)
	}
	ln.added = true
	return nil
}

// Watch registers fd (level-triggered, EPOLLIN) and calls fn on the loop's
// thread with the epoll events whenever it is readable. The worker's control
// socket is served this way. The caller keeps ownership of fd; Unwatch before
// closing it. Call before Run or on the loop thread.
func (l *Loop) Watch(fd int, fn func(events uint32)) error {
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd), Pad: tagWatch}); err != nil {
		return fmt.Errorf("loop: watch fd %d: %w", fd, err)
	}
	l.watches[fd] = fn
	return nil
}

// Unwatch removes a fd registered with Watch.
func (l *Loop) Unwatch(fd int) error {
	if _, ok := l.watches[fd]; !ok {
		return nil
	}
	delete(l.watches, fd)
	return epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Post runs fn on the loop's thread at the start of its next turn, waking it
// through the eventfd. It may be called from any goroutine.
// Tasks posted after Run has returned are dropped.
func (l *Loop) Post(fn func()) {
	l.tasksMu.Lock()
	defer l.tasksMu.Unlock()
	if l.wakeClosed {
		return
	}
	l.tasks = append(l.tasks, fn)
	if !l.woken { // else a wake-up is already on its way
		l.woken = true
		// EAGAIN means the counter is saturated: the loop is signalled anyway.
		_, _ = writeFD(l.wakefd, wakeValue[:])
	}
}

var wakeValue = [8]byte{1} // eventfd counter increment, native (little) endian

// Shutdown starts a graceful stop from any goroutine: listeners are removed and
// closed, Drainer handlers are told, open connections are served until they
// close, and whatever is still open after grace is closed (ReasonShutdown).
// Run returns when the last connection has gone.
func (l *Loop) Shutdown(grace time.Duration) {
	l.Post(func() { l.beginDrain(grace) })
}

// Stop closes everything at once from any goroutine; Run returns after it.
func (l *Loop) Stop() {
	l.Post(l.stopNow)
}

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.runDone }

// Now returns the time at the start of the current loop turn. Use it instead of
// time.Now on the hot path.
func (l *Loop) Now() time.Time { return l.wallNow }

// Draining reports whether a graceful stop has begun (loop thread only).
func (l *Loop) Draining() bool { return l.draining }

// Conns returns the number of open connections (loop thread only).
func (l *Loop) Conns() int { return l.nconns }

func (l *Loop) nanos() int64 { return l.now }

func (l *Loop) updateNow() {
	l.wallNow = time.Now()
	l.now = int64(l.wallNow.Sub(l.base))
}

// Run serves the loop on the calling goroutine, locked to its OS thread, until
// Shutdown finishes or Stop is called. It returns nil then, or the error that
// stopped the loop (only epoll_wait failing can). Run may be called once.
func (l *Loop) Run() error {
	if l.running.Swap(true) {
		return errors.New("loop: Run called twice")
	}
	// The loop's goroutine is not locked to its thread. Locking would cost
	// more than it keeps: the runtime preempts any goroutine that runs for
	// 10 ms, and a preempted locked goroutine can only resume on its own
	// thread, which waits for another thread to be woken to hand it the P
	// back (measured under keep-alive load with strace: about 140 signals
	// and 650 futex calls per worker in 3.5 s; echo p99 12.4 ms against
	// 9.2 ms unlocked). Unlocked, the
	// loop yields before the runtime has to ask (yieldEvery), and the yield
	// is a trip through the scheduler on the same thread. CPU pinning, which
	// needs a fixed thread, is done per process by the worker instead.
	defer close(l.runDone)
	defer l.closeAll()

	l.updateNow()
	l.endNow = l.now
	hot := false
	lastYield := l.now
	for !l.done {
		// Wait until the next timer (or not at all while connections wait
		// on the ready list). While the loop is hot (its last wait ended
		// with events) the wait is raw, made without the scheduler's
		// syscall bookkeeping (see sys.go), and bounded to hotWaitMillis;
		// under load events are usually ready and it returns at once. A
		// wait that times out empty makes the loop cold, and the next one
		// goes through the scheduler, so an idle worker sleeps cheaply.
		timeout := l.waitTimeout()
		raw := hot || timeout == 0
		if hot && (timeout < 0 || timeout > hotWaitMillis) {
			timeout = hotWaitMillis
		}
		n, err := epollWait(l.epfd, l.events, timeout, raw)
		if err != nil {
			if err == unix.EINTR {
				// A signal cut the wait short. During a raw wait that is
				// how the runtime asks for this goroutine (SIGURG, to
				// preempt it or stop the world); yielding here gives it a
				// safe point at once rather than at some later call.
				runtime.Gosched()
				continue
			}
			return os.NewSyscallError("epoll_wait", err)
		}
		if timeout != 0 {
			hot = n > 0
		}
		l.updateNow()
		l.stats.Wakeups++
		l.stats.Events += uint64(n)
		l.stats.EventsPerWait[bucketCount(n)]++
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			switch ev.Pad {
			case tagConn:
				if c := l.conns[ev.Fd]; c != nil {
					l.connEvent(c, ev.Events)
				}
			case tagListener:
				l.acceptReady(int(ev.Fd))
			case tagWake:
				l.runTasks()
			case tagWatch:
				if fn := l.watches[int(ev.Fd)]; fn != nil {
					fn(ev.Events)
				}
			}
		}
		if n == len(l.events) && n < maxEvents {
			l.events = make([]unix.EpollEvent, 2*n)
		}
		l.runReady()
		l.runTimers()
		if l.draining && l.nconns == 0 {
			l.done = true
		}
		end := time.Now()
		turn := end.Sub(l.wallNow)
		l.endNow = int64(end.Sub(l.base))
		l.stats.TurnNanosSum += uint64(turn)
		l.stats.TurnNanos[bucketNanos(turn)]++
		if l.endNow-lastYield >= int64(yieldEvery) {
			// Let other goroutines run, and show the runtime that this one
			// is not stuck, before its 10 ms preemption would signal it.
			runtime.Gosched()
			lastYield = l.endNow
		}
	}
	return l.err
}

// yieldEvery is how often a busy loop yields to the Go scheduler: under the
// 10 ms after which the runtime preempts a goroutine with a signal.
const yieldEvery = 4 * time.Millisecond

// hotWaitMillis bounds a raw blocking epoll_wait (see Run): long enough to
// span the gaps between requests under load, short enough that an idle loop
// soon blocks where the scheduler can see it.
const hotWaitMillis = 10

// waitTimeout returns epoll_wait's timeout in milliseconds: 0 while
// connections wait on the ready list, until the next timer otherwise
// (rounded up, so the timer is due on wake-up), or forever.
func (l *Loop) waitTimeout() int {
	if len(l.ready) > 0 {
		return 0
	}
	if len(l.timers) == 0 {
		return -1
	}
	d := l.timers[0].when - l.endNow
	if d <= 0 {
		return 0
	}
	ms := (d + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	if ms > 1<<30 {
		ms = 1 << 30
	}
	return int(ms)
}

func (l *Loop) runTasks() {
	var buf [8]byte
	// EAGAIN: the counter was already read by an earlier turn; nothing lost.
	_, _ = readFD(l.wakefd, buf[:])
	l.tasksMu.Lock()
	l.woken = false // a Post after this point writes the eventfd again
	l.taskRun, l.tasks = l.tasks, l.taskRun[:0]
	l.tasksMu.Unlock()
	for i, fn := range l.taskRun {
		fn()
		l.taskRun[i] = nil
	}
}

func (l *Loop) runTimers() {
	for len(l.timers) > 0 && l.timers[0].when <= l.now {
		t := l.timers[0]
		l.timers.remove(0)
		t.fn()
	}
}

func (l *Loop) tick() {
	l.cfg.OnTick()
	l.AfterFunc(l.cfg.TickInterval, l.tick)
}

func (l *Loop) sweepInterval() time.Duration {
	return min(time.Second, l.cfg.IdleTimeout/4)
}

// sweepIdle closes connections idle for IdleTimeout. A sweep over the fd table
// once per interval costs less than a timer reset per request.
func (l *Loop) sweepIdle() {
	for _, c := range l.conns {
		if c != nil && c.flags&(fClosing|fClosed) == 0 && c.idleFor(l.now, l.cfg.IdleTimeout) {
			c.Close(ReasonTimeout)
		}
	}
	l.AfterFunc(l.sweepInterval(), l.sweepIdle)
}

// acceptReady accepts up to AcceptBudget connections from a readable listener.
func (l *Loop) acceptReady(lfd int) { l.accept(lfd, l.cfg.AcceptBudget) }

// accept accepts up to budget connections from listener lfd.
func (l *Loop) accept(lfd int, budget int) {
	var ln *listener
	for i := range l.listeners {
		if l.listeners[i].fd == lfd {
			ln = &l.listeners[i]
		}
	}
	if ln == nil {
		return
	}
	for i := 0; i < budget; i++ {
		fd, err := accept4(lfd)
		if err == nil {
			l.openConn(fd, ln.tcp)
			continue
		}
		switch err {
		case unix.EAGAIN:
			// Queue empty. On the first try this wake-up was wasted: another
			// process sharing the listener took the connection (thundering herd).
			if i == 0 {
				l.stats.AcceptEmpty++
			}
			return
		case unix.ECONNABORTED:
			// The peer reset a queued connection before we took it; the next
			// one is unaffected.
		case unix.EMFILE, unix.ENFILE:
			// Out of fds. The pending connection keeps the level-triggered
			// listener readable, so doing nothing would spin the loop: give up
			// the spare fd, accept the connection and close it (the client sees
			// a close rather than a hang), then take the spare back.
			l.shedOne(lfd, err)
		case unix.EINVAL:
			// The socket stopped listening (the master shut a retired
			// reuseport socket down): it will never accept again and would
			// stay readable, so drop it rather than spin.
			l.log.Warn("listener stopped listening; removing it", "fd", lfd)
			l.removeListener(lfd)
			return
		case unix.ENOBUFS, unix.ENOMEM:
			// Kernel memory pressure: stop accepting for this turn; the
			// listener stays registered and is tried again next turn.
			l.logAcceptError(err)
			return
		default:
			// accept(2): Linux passes pending network errors of the new socket
			// (EPROTO, ENETDOWN, EHOSTUNREACH, ENOPROTOOPT, ...) and firewall
			// refusals (EPERM) as accept errors; they concern that connection
			// only, so retry like EAGAIN does, as the man page advises.
			l.logAcceptError(err)
		}
	}
}

func (l *Loop) logAcceptError(err error) {
	l.stats.AcceptErrors++
	if l.stats.AcceptErrors&(l.stats.AcceptErrors-1) == 0 { // log the 1st, 2nd, 4th, 8th...
		l.log.Warn("accept failed", "err", os.NewSyscallError("accept4", err), "count", l.stats.AcceptErrors)
	}
}

// shedOne accepts and closes one connection using the spare fd's slot. It
// reports whether one was waiting.
func (l *Loop) shedOne(lfd int, cause error) bool {
	if l.spare >= 0 {
		_ = closeFD(l.spare)
		l.spare = -1
	}
	fd, err := accept4(lfd)
	if err == nil {
		_ = closeFD(fd)
		l.stats.AcceptShed++
		l.logAcceptError(cause)
	}
	if err := l.openSpare(); err != nil {
		l.log.Warn("cannot reopen spare fd", "err", err)
	}
	return err == nil
}

func (l *Loop) openConn(fd int, tcp bool) {
	if tcp {
		// Responses leave as whole writes, so Nagle only adds delay to a
		// pipelined tail. Failure is harmless (the peer may already be gone).
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: connEvents, Fd: int32(fd), Pad: tagConn}); err != nil {
		l.log.Warn("cannot register connection", "err", err)
		_ = closeFD(fd)
		return
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*Conn, len(l.conns)+64)...)
	}
	c := &Conn{loop: l, fd: int32(fd), active: l.now}
	l.conns[fd] = c
	l.nconns++
	l.stats.Accepted++
	l.h.OnOpen(c)
}

// connEvent handles one epoll event of a connection.
func (l *Loop) connEvent(c *Conn, ev uint32) {
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The peer is gone or half-gone: read to EOF or the error, and let
		// the read report it, after delivering what came before it.
		c.flags |= fRDHUP | fReadable
	}
	if ev&unix.EPOLLOUT != 0 && c.pending() > 0 {
		l.flush(c)
		if c.flags&fClosed != 0 {
			return
		}
	}
	if ev&unix.EPOLLIN != 0 {
		c.flags |= fReadable
	}
	if c.flags&fReadable != 0 {
		l.readConn(c)
	}
}

// readConn reads until EAGAIN, the read budget, backpressure or a close.
func (l *Loop) readConn(c *Conn) {
	if c.flags&(fClosed|fPaused) != 0 || c.flags&(fClosing|fLingering) == fClosing {
		return // paused: resumed by flush; closing: input no longer matters
	}
	budget := l.cfg.ReadBudget
	for {
		n, err := readFD(int(c.fd), l.rbuf)
		if err != nil {
			if err == unix.EAGAIN {
				c.flags &^= fReadable
				return
			}
			// ECONNRESET, ETIMEDOUT...: the connection is dead; what we owe
			// it can no longer be delivered.
			l.closeNow(c, ReasonError)
			return
		}
		if n == 0 {
			c.flags &^= fReadable
			l.peerClosed(c)
			return
		}
		l.stats.ReadBytes += uint64(n)
		c.active = l.now
		if c.flags&fLingering == 0 {
			l.deliver(c, l.rbuf[:n])
			if c.flags&(fClosing|fClosed|fPaused) != 0 && c.flags&fLingering == 0 {
				return
			}
		}
		if n < len(l.rbuf) && c.flags&fRDHUP == 0 {
			// A short read emptied the socket. Edge-triggered epoll reports
			// any later arrival as a new event, so the read that would only
			// return EAGAIN is skipped.
			c.flags &^= fReadable
			return
		}
		if budget -= n; budget <= 0 {
			l.markReady(c)
			return
		}
	}
}

// deliver hands input to the handler and keeps what it does not consume.
func (l *Loop) deliver(c *Conn, data []byte) {
	in := data
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		in = c.in
	}
	l.cur = c
	consumed := l.h.OnData(c, in)
	l.cur = nil
	if consumed < 0 || consumed > len(in) {
		panic(fmt.Sprintf("loop: OnData consumed %d of %d bytes", consumed, len(in)))
	}
	if len(l.wbuf) > 0 {
		l.send(c, l.wbuf)
		if cap(l.wbuf) > 4<<20 { // one huge response must not pin memory forever
			l.wbuf = make([]byte, 0, 16<<10)
		} else {
			l.wbuf = l.wbuf[:0]
		}
	}
	if c.flags&fClosed != 0 {
		return
	}
	rest := in[consumed:]
	switch {
	case len(rest) == 0:
		l.putBuf(c.in)
		c.in = nil
	case len(c.in) > 0: // in is c.in: slide the rest to the front
		c.in = c.in[:copy(c.in, rest)]
	default:
		c.in = append(l.getBuf(len(rest)), rest...)
	}
	if len(c.in) > l.cfg.MaxInput {
		c.requestClose(ReasonOverflow, true)
	}
	if c.flags&fClosing != 0 {
		l.finishClose(c)
		return
	}
	if c.pending() > l.cfg.HighWater {
		c.flags |= fPaused
		l.stats.Paused++
	}
}

// send writes p through to the socket, keeping the unwritten tail.
func (l *Loop) send(c *Conn, p []byte) {
	if c.pending() > 0 { // earlier bytes wait for EPOLLOUT; keep the order
		c.out = append(c.out, p...)
		return
	}
	n, err := writeFD(int(c.fd), p)
	if err != nil {
		if err != unix.EAGAIN {
			// EPIPE, ECONNRESET: the peer is gone.
			l.closeNow(c, ReasonError)
			return
		}
		n = 0
	}
	l.stats.WrittenBytes += uint64(n)
	if n < len(p) {
		if c.out == nil {
			c.out = l.getBuf(len(p) - n)
		}
		c.out = append(c.out, p[n:]...)
	}
}

// flush writes pending output on EPOLLOUT.
func (l *Loop) flush(c *Conn) {
	for c.pending() > 0 {
		n, err := writeFD(int(c.fd), c.out[c.outPos:])
		if err != nil {
			if err == unix.EAGAIN {
				break
			}
			l.closeNow(c, ReasonError)
			return
		}
		l.stats.WrittenBytes += uint64(n)
		c.outPos += n
	}
	if c.pending() == 0 {
		l.putBuf(c.out)
		c.out, c.outPos = nil, 0
		if c.flags&fClosing != 0 {
			l.finishClose(c)
			return
		}
	} else if c.outPos > len(c.out)/2 && c.outPos > 64<<10 {
		// Slide the tail down so a long-lived slow reader does not keep
		// a mostly-sent buffer growing at the back.
		c.out = c.out[:copy(c.out, c.out[c.outPos:])]
		c.outPos = 0
	}
	if c.flags&fPaused != 0 && c.pending() <= l.cfg.LowWater {
		c.flags &^= fPaused
		if c.flags&fReadable != 0 {
			l.markReady(c)
		}
	}
}

// peerClosed handles read returning 0: the peer will send no more.
func (l *Loop) peerClosed(c *Conn) {
	switch {
	case c.flags&fLingering != 0:
		l.closeNow(c, c.reason)
	case c.flags&fClosing != 0:
		// Already closing: finishClose runs when the output drains.
	case c.pending() > 0:
		// Half-close: the peer may still read what we owe it.
		c.flags |= fClosing
		c.reason = ReasonPeer
	default:
		l.closeNow(c, ReasonPeer)
	}
}

// finishClose closes a connection whose Close was requested, once its output
// has drained: at once, or lingering.
func (l *Loop) finishClose(c *Conn) {
	if c.flags&fClosed != 0 || c.pending() > 0 {
		return // flush calls again when the output has drained
	}
	if c.flags&fLinger == 0 || c.flags&fLingering != 0 {
		l.closeNow(c, c.reason)
		return
	}
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil {
		l.closeNow(c, c.reason) // ENOTCONN: the peer is already gone
		return
	}
	c.flags |= fLingering
	l.putBuf(c.in)
	c.in = nil
	c.linger = l.AfterFunc(l.cfg.LingerTimeout, func() { l.closeNow(c, c.reason) })
	if c.flags&fReadable != 0 {
		l.markReady(c)
	}
}

// closeNow closes the fd and tells the handler. Closing the fd removes it
// from the epoll set: connection fds are never duplicated, so this is the
// last reference to the open file.
func (l *Loop) closeNow(c *Conn, reason CloseReason) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	c.reason = reason
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if err := closeFD(int(c.fd)); err != nil {
		l.log.Warn("close connection", "err", err)
	}
	l.conns[c.fd] = nil
	l.nconns--
	l.stats.Closed[reason]++
	l.putBuf(c.in)
	l.putBuf(c.out)
	c.in, c.out, c.outPos = nil, nil, 0
	l.h.OnClose(c, reason)
}

func (l *Loop) markReady(c *Conn) {
	if c.flags&fInReady == 0 {
		c.flags |= fInReady
		l.ready = append(l.ready, c)
	}
}

// runReady gives connections cut short by their read budget another turn.
func (l *Loop) runReady() {
	if len(l.ready) == 0 {
		return
	}
	l.ready, l.readyNext = l.readyNext[:0], l.ready
	for i, c := range l.readyNext {
		c.flags &^= fInReady
		l.readyNext[i] = nil
		if c.flags&fReadable != 0 {
			l.readConn(c)
		}
	}
}

func (l *Loop) beginDrain(grace time.Duration) {
	if l.draining || l.done {
		return
	}
	l.draining = true
	// Take what is already queued before closing: a connection the kernel
	// completed is a client waiting, and closing the listener would reset it.
	for _, ln := range append([]listener(nil), l.listeners...) { // accept may drop one
		l.accept(ln.fd, 1<<20)
	}
	l.closeListeners()
	d, _ := l.h.(Drainer)
	for _, c := range l.conns {
		if c == nil || c.flags&(fClosing|fClosed) != 0 {
			continue
		}
		// Input may have arrived that this turn has not read yet (its event
		// is still queued in epoll): read it first, so the handler does not
		// take a connection with a request waiting for an idle one.
		c.flags |= fReadable
		l.readConn(c)
		if d != nil && c.flags&(fClosing|fClosed) == 0 {
			d.OnDrain(c)
		}
	}
	l.AfterFunc(grace, func() { l.closeConns(ReasonShutdown) })
}

func (l *Loop) stopNow() {
	l.closeListeners()
	l.closeConns(ReasonShutdown)
	l.done = true
}

func (l *Loop) removeListener(fd int) {
	for i, ln := range l.listeners {
		if ln.fd == fd {
			_ = closeFD(fd)
			l.listeners = append(l.listeners[:i], l.listeners[i+1:]...)
			return
		}
	}
}

func (l *Loop) closeListeners() {
	for _, ln := range l.listeners {
		// Closing our copy also removes it from the epoll set; in shared mode
		// the other workers' copies, and the master's, stay open.
		_ = closeFD(ln.fd)
	}
	l.listeners = nil
}

func (l *Loop) closeConns(reason CloseReason) {
	for _, c := range l.conns {
		if c != nil {
			l.closeNow(c, reason)
		}
	}
}

func (l *Loop) closeAll() {
	l.closeListeners()
	l.closeConns(ReasonShutdown)
	l.tasksMu.Lock()
	l.wakeClosed = true
	if l.wakefd >= 0 {
		_ = closeFD(l.wakefd)
		l.wakefd = -1
	}
	l.tasksMu.Unlock()
	for _, fd := range []*int{&l.epfd, &l.spare} {
		if *fd >= 0 {
			_ = closeFD(*fd)
			*fd = -1
		}
	}
}

func (l *Loop) getBuf(n int) []byte {
	if k := len(l.bufFree); k > 0 && n <= bufKeepMax {
		b := l.bufFree[k-1]
		l.bufFree[k-1] = nil
		l.bufFree = l.bufFree[:k-1]
		return b
	}
	return make([]byte, 0, max(n, bufMin))
}

func (l *Loop) putBuf(b []byte) {
	if b == nil || cap(b) > bufKeepMax || len(l.bufFree) >= bufFreeMax {
		return
	}
	l.bufFree = append(l.bufFree, b[:0])
}

// bucketCount maps an event count to its power-of-two bucket.
func bucketCount(n int) int {
	return min(bits.Len(uint(n)), len(Stats{}.EventsPerWait)-1)
}

func bucketNanos(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	return min(bits.Len64(us), len(Stats{}.TurnNanos)-1)
}
