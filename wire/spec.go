package wire

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
	"unicode/utf8"
)

// File descriptors a worker inherits from the master (os.ProcAttr.Files),
// at fixed numbers:
//
//	0, 1, 2     the master's stdin, stdout and stderr
//	3           the control socket (SOCK_SEQPACKET, one end of a socketpair)
//	4 .. 4+n-1  the listening sockets, in the order of Spec.Listeners
//	4+n         the access log (Settings.AccessLog a path; Spec.AccessLogFD)
//	then        the --root directory, O_PATH (Spec.RootFD)
//
// Nothing else is inherited; the worker makes these close-on-exec as soon as
// it has checked them.
const (
	FDControl       = 3
	FDFirstListener = 4
)

// SpecEnv is the environment variable carrying the worker's Spec (JSON). The
// worker reads it once at start and removes it from its environment.
const SpecEnv = "PREFORK_WORKER_SPEC"

// Spec is what the master tells a worker it starts: the master's Settings as
// they are, and the facts of this start.
type Spec struct {
	Settings
	Slot       int        `json:"slot"`       // worker slot, 0..N-1, stable across restarts
	Generation int        `json:"generation"` // increases with every start of the slot
	Listeners  []Listener `json:"listeners"`  // fd FDFirstListener+i is Listeners[i]
	// Exclusive: the listeners are shared with the other workers (shared
	// mode); register them with EPOLLEXCLUSIVE.
	Exclusive bool `json:"exclusive"`
	// Handoff: handoff mode. The worker inherits no listener (Listeners is
	// empty); the master accepts and sends each connection's fd over the
	// control socket (FDS messages, wire/handoff.go).
	Handoff bool `json:"handoff,omitempty"`
	// Heartbeat is how often the loop sends HB: often enough that the
	// master's --worker-timeout sees several.
	Heartbeat time.Duration `json:"heartbeat"`
	// RecycleAfter is the request count after which the master recycles
	// this worker (--max-requests plus its jitter; 0: never). The worker
	// sends a heartbeat the turn it reaches it, instead of at its next
	// tick, so a busy worker is replaced close to its limit.
	RecycleAfter uint64 `json:"recycle_after,omitempty"`
	// CPU pins the worker process, every thread of it (--cpu-affinity); nil: not pinned.
	CPU *int `json:"cpu,omitempty"`
	// AccessLogFD: the access log the master opened follows the listeners.
	AccessLogFD bool `json:"access_log_fd,omitempty"`
	// RootFD: the --root directory the master opened follows them.
	RootFD bool `json:"root_fd,omitempty"`
}

// FDRoot is the --root directory's fd number: after the listeners and the
// access log.
func (s *Spec) FDRoot() int {
	n := s.FDAccessLog()
	if s.AccessLogFD {
		n++
	}
	return n
}

// FDAccessLog is the access log's fd number: after the listeners.
func (s *Spec) FDAccessLog() int { return FDFirstListener + len(s.Listeners) }

// Listener describes one inherited listening socket.
type Listener struct {
	Addr string `json:"addr"`
}

// Env returns the environment entry carrying s. A string that is not valid
// UTF-8 is refused: JSON would replace its bytes with U+FFFD and the worker
// would serve other settings than the master's (Settings.Validate refuses
// them before anything starts).
func (s Spec) Env() (string, error) {
	if name := s.notUTF8(); name != "" {
		return "", fmt.Errorf("worker spec: %s is not valid UTF-8", name)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("worker spec: %w", err)
	}
	return SpecEnv + "=" + string(b), nil
}

// notUTF8 names the first string of s that is not valid UTF-8 ("" if none).
func (s *Spec) notUTF8() string {
	if name := s.Settings.notUTF8(); name != "" {
		return name
	}
	for _, l := range s.Listeners {
		if !utf8.ValidString(l.Addr) {
			return "listener address"
		}
	}
	return ""
}

// ReadSpec reads the worker's Spec from its environment and removes it, so a
// program the worker starts does not inherit it.
func ReadSpec() (Spec, error) {
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
