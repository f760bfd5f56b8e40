package worker

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// File descriptors a worker inherits from the master (exec.Cmd.ExtraFiles),
// at fixed numbers:
//
//	3           the control socket (SOCK_SEQPACKET, one end of a socketpair)
//	4 .. 4+n-1  the listening sockets, in the order of Spec.Listeners
//
// Everything else the worker holds it opened itself; every fd is CLOEXEC.
const (
	FDControl       = 3
	FDFirstListener = 4
)

// SpecEnv is the environment variable carrying the worker's Spec (JSON). The
// worker reads it once at start and removes it from its environment.
const SpecEnv = "PREFORK_WORKER_SPEC"

// Spec is what the master tells a worker it starts.
type Spec struct {
	Slot       int        `json:"slot"`       // worker slot, 0..N-1, stable across restarts
	Generation int        `json:"generation"` // increases with every start of the slot
	Proto      string     `json:"proto"`
	Listeners  []Listener `json:"listeners"` // fd FDFirstListener+i is Listeners[i]
	// Exclusive: the listeners are shared with the other workers (shared
	// mode); register them with EPOLLEXCLUSIVE.
	Exclusive       bool          `json:"exclusive"`
	IdleTimeout     time.Duration `json:"idle_timeout"`
	GracefulTimeout time.Duration `json:"graceful_timeout"`
	Heartbeat       time.Duration `json:"heartbeat"`
	// CPU pins the worker process, every thread of it (--cpu-affinity); nil: not pinned.
	CPU       *int   `json:"cpu,omitempty"`
	LogFormat string `json:"log_format"`
	LogLevel  string `json:"log_level"`
}

// Listener describes one inherited listening socket.
type Listener struct {
	Addr string `json:"addr"`
}

// Encode returns the environment entry carrying s.
func (s Spec) Encode() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("worker spec: %w", err)
	}
	return SpecEnv + "=" + string(b), nil
}

// readSpec reads the Spec from the environment and removes it.
func readSpec() (Spec, error) {
	var s Spec
	v, ok := os.LookupEnv(SpecEnv)
	if !ok {
		return s, fmt.Errorf("worker: %s is not set: this command is started by `prefork serve`", SpecEnv)
	}
	_ = os.Unsetenv(SpecEnv)
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return s, fmt.Errorf("worker: bad %s: %w", SpecEnv, err)
	}
	return s, nil
}

// Control messages. The control socket is SOCK_SEQPACKET, so one message is
// one datagram: no framing. EOF on it means the other side is gone.
//
// Worker to master:
//
//	READY      the listeners are in the loop's epoll set; the worker serves
//	HB <n>     heartbeat, sent from the loop thread every Spec.Heartbeat,
//	           with the number of open connections
//	METRICS <id>\n<body>
//	           answer to METRICS <id>: the worker's registry in the
//	           length-delimited protobuf exposition format
//
// Master to worker:
//
//	STOP       graceful stop: stop accepting, let connections finish within
//	           Spec.GracefulTimeout, exit 0
//	QUIT       fast stop: close everything, exit 0
//	METRICS <id>
//	           gather the worker's registry (on the loop thread) and answer
//	RETIRE     like STOP, but first accept what is queued on the listeners
//	           (the master has steered new connections elsewhere), so a
//	           reuseport socket can be closed without losing a connection
const (
	MsgReady     = "READY"
	MsgHeartbeat = "HB"
	MsgStop      = "STOP"
	MsgQuit      = "QUIT"
	MsgRetire    = "RETIRE"
	MsgMetrics   = "METRICS"
)
