package master

import (
	"math/rand/v2"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	procfs "github.com/prefork/prefork/internal/proc"
	"github.com/prefork/prefork/wire"
)

// osEnv is the real env: processes forked from the spawner's thread, kill(2),
// the wall clock, /proc/PID/status and math/rand.
func osEnv(sp *spawner) env {
	return env{
		start: func(spec wire.Spec, listeners []int, cfg *Config) (int, control, error) {
			pid, c, err := sp.start(cfg, spec, listeners)
			if err != nil {
				return 0, nil, err
			}
			return pid, unixControl{c}, nil
		},
		signal: func(pid int, sig unix.Signal) error {
			if err := unix.Kill(pid, sig); err != nil {
				return os.NewSyscallError("kill", err)
			}
			return nil
		},
		now: time.Now,
		afterFunc: func(d time.Duration, f func()) timer {
			return time.AfterFunc(d, f)
		},
		rss:  procfs.RSS,
		intn: rand.IntN,
	}
}

// unixControl is a control socket: the master's end of a SOCK_SEQPACKET
// socketpair, in Go's poller so a Recv blocks its goroutine, not a thread.
type unixControl struct{ c *net.UnixConn }

func (u unixControl) Send(msg []byte, timeout time.Duration) error {
	_ = u.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := u.c.Write(msg)
	return err
}

func (u unixControl) Recv(buf []byte) (int, error) { return u.c.Read(buf) }

func (u unixControl) Close() error { return u.c.Close() }
