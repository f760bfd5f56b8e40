package master

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/wire"
)

// env is everything the supervisor asks of the operating system: starting a
// worker process, signalling it, and the clock. Run uses osEnv (env_os.go);
// the state-machine tests use a fake, so restart, backoff, reload, scale,
// retire and hung-worker policy run as table tests without a fork
// (cloudflare/tableflip's env struct is the model).
//
// Child exits and signals to the master reach the supervisor as events
// (evExit, evSignal), so they need no seam: a test posts them.
type env struct {
	// start starts a worker for spec with the listeners at
	// wire.FDFirstListener.., and returns its pid and the master's end of
	// its control socket.
	start func(spec wire.Spec, listeners []int, cfg *Config) (pid int, ctl control, err error)
	// signal sends sig to a worker.
	signal func(pid int, sig unix.Signal) error
	// now is the clock.
	now func() time.Time
	// afterFunc runs f after d, on a goroutine of its own.
	afterFunc func(d time.Duration, f func()) timer
	// rss is a worker's resident set size in bytes (--max-worker-rss).
	rss func(pid int) (int64, error)
	// intn is a random number in [0, n) (--max-requests-jitter).
	intn func(n int) int
}

// timer is a pending afterFunc.
type timer interface {
	Stop() bool
}

// control is the master's end of a worker's control socket: one datagram per
// message.
type control interface {
	// Send writes one message, giving up after timeout (a wedged worker's
	// full socket buffer must not block the supervisor).
	Send(msg []byte, timeout time.Duration) error
	// Recv reads one message into buf; an error or 0 bytes is EOF.
	Recv(buf []byte) (int, error)
	// Close closes it; a Recv in progress returns.
	Close() error
}
