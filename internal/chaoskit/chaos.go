// Package chaoskit is the engine of scripts/chaos and of the master's chaos
// test: an HTTP load over loopback that records every failed request
// (Load), signals to the master and SIGKILLs of its workers that record what
// they hit (Chaos), and the sorting of the failures into those on a killed
// worker's own connections and the rest (Summarize).
//
// # Attribution
//
// A SIGKILLed worker takes the connections it has accepted with it; those
// failures are expected. Every other failure — a connection still queued in a
// listening socket, a keep-alive connection of a worker being reloaded or
// retired — is a defect of reloads or scaling, whose target is zero. To tell
// them apart exactly, KillWorker freezes the worker with SIGSTOP, waits until
// every one of its threads is stopped (so it can accept nothing more), reads
// which client connections it holds — the peer address of every TCP socket
// in its fd table, through pidfd_getfd (PeerPorts) — and only then sends
// SIGKILL. A connection's fd never leaves the worker that accepted
// it, so that set is exactly the connections that die with the worker. A
// failed request is the killed worker's if its connection's client port is
// in the set of a kill that happened while the connection was open (between
// the start of its dial and the failure): a 4-tuple is unique while it
// exists, and the server's address is fixed, so the client port names the
// connection.
//
// This works on the real `prefork serve --proto http`, needs no change to
// the server, and covers what a response header naming the worker could not:
// a new connection that the worker accepted and died before answering.
package chaoskit

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one thing the chaos did.
type Event struct {
	At   time.Time // when it was sent; for a SIGKILL, when the victim's connections were read
	What string    // "SIGKILL", "HUP", "TTIN", "TTOU"
	PID  int       // the process signalled
	// Ports (SIGKILL only) are the client ports of the connections the
	// victim held when it died.
	Ports map[uint16]bool
	// Exact (SIGKILL only): every thread of the victim was seen stopped
	// before Ports was read, and Ports was read without error.
	Exact bool
	// Frozen (SIGKILL only) is how long the victim was stopped before it
	// was killed: the chaos's own delay to the victim's queue.
	Frozen time.Duration
}

// Chaos signals a master and its workers and records what it did.
type Chaos struct {
	master int
	port   uint16

	mu     sync.Mutex
	events []Event
}

// New returns a Chaos for the master with PID master serving on addr
// (host:port; the port identifies the workers' accepted connections).
func New(master int, addr string) (*Chaos, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port of %q: %w", addr, err)
	}
	return &Chaos{master: master, port: uint16(port)}, nil
}

// signalNames are the names Event.What uses.
var signalNames = map[unix.Signal]string{unix.SIGHUP: "HUP", unix.SIGTTIN: "TTIN", unix.SIGTTOU: "TTOU"}

// Signal sends sig (HUP, TTIN or TTOU) to the master.
func (c *Chaos) Signal(sig unix.Signal) error {
	name, ok := signalNames[sig]
	if !ok {
		name = unix.SignalName(sig)
	}
	at := time.Now()
	if err := unix.Kill(c.master, sig); err != nil {
		return os.NewSyscallError("kill", err)
	}
	c.record(Event{At: at, What: name, PID: c.master})
	return nil
}

// KillWorker SIGKILLs worker pid, recording which client connections it held
// (see the package doc): SIGSTOP, wait until stopped, read its connections,
// SIGKILL. It kills the worker even if reading its connections failed (the
// event is then not Exact) and returns that error.
func (c *Chaos) KillWorker(pid int) (Event, error) {
	frozen := time.Now()
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		return Event{}, os.NewSyscallError("kill", err)
	}
	// A second at most: stopping takes microseconds, unless a thread is in
	// an uninterruptible sleep.
	stopped := waitStopped(pid, time.Second)
	at := time.Now()
	ports, err := PeerPorts(pid, c.port)
	if kerr := unix.Kill(pid, unix.SIGKILL); kerr != nil && err == nil {
		err = os.NewSyscallError("kill", kerr)
	}
	ev := Event{At: at, What: "SIGKILL", PID: pid, Ports: ports, Exact: stopped && err == nil, Frozen: time.Since(frozen)}
	c.record(ev)
	return ev, err
}

func (c *Chaos) record(ev Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
}

// Events returns what the chaos did so far, in order.
func (c *Chaos) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}
