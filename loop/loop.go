package loop

import (
	"errors"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
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
	// Defaults 64 KiB and HighWater/4: with the kernel's socket buffer
	// (often megabytes) ahead of it, more buys no throughput, and it is
	// what a client that does not read can make the loop hold for it.
	HighWater int
	LowWater  int

	// MaxInput bounds a connection's unconsumed input; past it the connection
	// is closed with ReasonOverflow. Protocols enforce their own, smaller,
	// limits; this is the loop's guard. Default 1 MiB.
	MaxInput int

	// IdleTimeout closes connections that sent nothing for this long
	// (ReasonTimeout). Zero disables it.
	IdleTimeout time.Duration

	// HeaderTimeout bounds a request head (or a protocol's frame) from its
	// first byte: a connection whose handler called Conn.BeginHead and not
	// Conn.EndHead within it is given to HeadTimeouter.OnHeadTimeout, if the
	// handler has it, and closed (ReasonHeaderTimeout). Zero disables it.
	HeaderTimeout time.Duration

	// WriteTimeout closes a connection whose pending output has made no
	// progress for this long (ReasonWriteTimeout), freeing its buffers: a
	// client that never reads cannot hold them. Zero disables it.
	//
	// The three timeouts are checked by one sweep of the connection table
	// every second or a quarter of the shortest timeout, whichever is
	// shorter, so they cost nothing per request; a timeout fires up to one
	// sweep interval late.
	WriteTimeout time.Duration

	// MaxConns bounds the loop's open connections. At the limit the loop
	// stops accepting (its listeners leave the epoll set, counted in
	// Stats.AcceptPaused): new connections wait in the kernel's backlog, or
	// go to another process sharing the listener, instead of being reset,
	// and accepting resumes as soon as one closes. Zero means no limit.
	MaxConns int

	// DrainQuiet is how long an idle connection given to Conn.CloseWhenQuiet
	// must have been quiet (no input) before it is closed. Default 1 s.
	DrainQuiet time.Duration

	// LingerTimeout bounds a lingering close. Default 5 s.
	LingerTimeout time.Duration

	// TickInterval and OnTick: OnTick runs on the loop's thread at least every
	// TickInterval (epoll_wait never sleeps longer), so a heartbeat sent from
	// it stops when the loop is stuck. Default 1 s when OnTick is set.
	TickInterval time.Duration
	OnTick       func()
	// OnTurn, if set, runs on the loop's thread at the end of every turn
	// (each epoll_wait's events handled): once per batch of events, not per
	// request, for checks that should not wait for a tick.
	OnTurn func()

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
		cfg.HighWater = 64 << 10
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
	if cfg.DrainQuiet <= 0 {
		cfg.DrainQuiet = time.Second
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
)

// Loop is one Reactor: one epoll set served by one goroutine, the one that
// calls Run (not locked to an OS thread). See the package documentation for
// the model.
type Loop struct {
	cfg Config
	h   Handler
	log *slog.Logger

	epfd int
	// epFile and epRaw hold epfd once the loop has waited through Go's
	// netpoller (parkedWait, while work is outside: AddOutside).
	epFile  *os.File
	epRaw   syscall.RawConn
	outside int
	wakefd  int // eventfd: Post and Shutdown wake the loop through it
	spare   int // a reserved fd, given up to shed a connection on EMFILE

	events []unix.EpollEvent
	rbuf   []byte // the one read buffer
	wbuf   []byte // writes made during OnData, sent as one write(2)
	cur    *Conn  // the connection whose OnData is running

	conns     []*Conn // indexed by fd
	nconns    int
	listeners []listener
	watches   map[int]func(events uint32)
	ready     []*Conn // connections with input left over after their read budget
	quiet     []*Conn // CloseWhenQuiet's connections
	paused    bool    // MaxConns reached: listeners are out of the epoll set
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
	if cfg.IdleTimeout > 0 || cfg.HeaderTimeout > 0 || cfg.WriteTimeout > 0 {
		l.AfterFunc(l.sweepInterval(), l.sweep)
	}
	return l, nil
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

// Accepted returns the number of connections accepted or adopted so far, as
// Stats.Accepted, without Stats' walk over the connections (loop thread
// only).
func (l *Loop) Accepted() uint64 { return l.stats.Accepted }

func (l *Loop) nanos() int64 { return l.now }

func (l *Loop) updateNow() {
	l.wallNow = time.Now()
	l.now = int64(l.wallNow.Sub(l.base))
}

// Run serves the loop on the calling goroutine until Shutdown finishes or Stop
// is called. It returns nil then, or the error that stopped the loop (only
// epoll_wait failing can). Run may be called once. The goroutine is not locked
// to its OS thread: a busy loop yields to the Go scheduler every 4 ms
// (yieldEvery), before the runtime would preempt it.
func (l *Loop) Run() error {
	if l.running.Swap(true) {
		return errors.New("loop: Run called twice")
	}
	// The loop's goroutine is not locked to its thread. Locking would cost
	// more than it keeps: the runtime preempts any goroutine that runs for
	// 10 ms, and a preempted locked goroutine can only resume on its own
	// thread, which waits for another thread to be woken to hand it the P
	// back: every preemption costs a signal and a thread wake-up, and the
	// wait shows in the tail latency (see BENCHMARKS.md). Unlocked, the
	// loop yields before the runtime has to ask (yieldEvery), and, since a
	// worker runs with GOMAXPROCS=1, the yield is a trip through the
	// scheduler on the same thread. CPU pinning, which needs a fixed thread,
	// is done per process by the worker instead.
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
		var n int
		var err error
		if l.outside > 0 && timeout != 0 {
			// Goroutines or timers work for the loop: let them have the
			// processor while it waits (see AddOutside).
			n, err = l.parkedWait(timeout)
		} else {
			n, err = epollWait(l.epfd, l.events, timeout, raw)
		}
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
		if l.cfg.OnTurn != nil {
			l.cfg.OnTurn()
		}
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
	d := time.Second
	for _, t := range []time.Duration{l.cfg.IdleTimeout, l.cfg.HeaderTimeout, l.cfg.WriteTimeout} {
		if t > 0 {
			d = min(d, t/4)
		}
	}
	return max(d, time.Millisecond)
}

// sweep closes connections past one of their timeouts. A sweep over the fd
// table once per interval costs less than a timer reset per request.
func (l *Loop) sweep() {
	idle, head, write := int64(l.cfg.IdleTimeout), int64(l.cfg.HeaderTimeout), int64(l.cfg.WriteTimeout)
	for _, c := range l.conns {
		if c == nil || c.flags&fClosed != 0 {
			continue
		}
		switch {
		case write > 0 && c.stallAt != 0 && l.now-c.stallAt >= write:
			// Nothing the client would read can be sent: close at once.
			l.closeNow(c, ReasonWriteTimeout)
		case c.flags&fClosing != 0:
			// Flushing or lingering: bounded by the write and linger timeouts.
		case head > 0 && c.headAt != 0 && l.now-c.headAt >= head:
			l.headTimedOut(c)
		case idle > 0 && c.idleFor(l.now, l.cfg.IdleTimeout):
			c.Close(ReasonTimeout)
		}
	}
	l.AfterFunc(l.sweepInterval(), l.sweep)
}

// headTimedOut lets the protocol answer a head that did not complete in
// time (HTTP's 408), then closes the connection.
func (l *Loop) headTimedOut(c *Conn) {
	c.headAt = 0
	if t, ok := l.h.(HeadTimeouter); ok {
		t.OnHeadTimeout(c)
	}
	c.Close(ReasonHeaderTimeout) // a no-op if the handler closed it
}
