package master

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how listeners reach workers.
type Mode string

const (
	// ModeShared: one listening socket per address, inherited by every
	// worker and registered with EPOLLEXCLUSIVE.
	ModeShared Mode = "shared"
	// ModeReusePort: one SO_REUSEPORT socket per address per worker slot,
	// kept by the master; worker k only holds slot k's sockets.
	ModeReusePort Mode = "reuseport"
)

// Config is what the master runs.
type Config struct {
	Workers int      // worker slots at start (>= 1)
	Mode    Mode     // listener mode
	Addrs   []string // addresses to listen on
	// Inherited are listening sockets handed to the master (systemd socket
	// activation); when set, Addrs is ignored.
	Inherited []int
	Proto     string // protocol name, passed to workers

	IdleTimeout     time.Duration // passed to workers
	GracefulTimeout time.Duration // TERM: how long connections may finish
	WorkerTimeout   time.Duration // a worker silent this long is killed
	LogFormat       string        // passed to workers
	LogLevel        string        // passed to workers

	PidFile string // written atomically at start, removed at exit ("" none)
	// MetricsListen is the address of /metrics, /healthz and /readyz ("" none).
	MetricsListen string
	// ScrapeTimeout bounds how long a scrape waits for each worker. Default 1 s.
	ScrapeTimeout time.Duration
	AdminSocket   string // unix socket for `prefork status` ("" none)
	User, Group   string // workers run as this user/group (master must be root)
	// CPUAffinity pins worker slot k (the process, all its threads) to the
	// k-th CPU the master may use (modulo their number).
	CPUAffinity bool

	// Exe is the binary workers run (default /proc/self/exe) and WorkerArgs
	// its arguments (default ["worker"]).
	Exe        string
	WorkerArgs []string

	// Backoff after repeated crashes: 0 for the first, then BackoffMin
	// doubling up to BackoffMax; reset once a worker has run StablePeriod.
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	StablePeriod time.Duration

	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Workers < 1 {
		return errors.New("master: need at least one worker")
	}
	if len(c.Addrs) == 0 && len(c.Inherited) == 0 {
		return errors.New("master: no listen address")
	}
	switch c.Mode {
	case "":
		c.Mode = ModeReusePort
	case ModeShared, ModeReusePort:
	default:
		return fmt.Errorf("master: unknown mode %q (want shared or reuseport)", c.Mode)
	}
	if c.GracefulTimeout <= 0 {
		c.GracefulTimeout = 30 * time.Second
	}
	if c.WorkerTimeout <= 0 {
		c.WorkerTimeout = 30 * time.Second
	}
	if c.Exe == "" {
		c.Exe = "/proc/self/exe"
	}
	if c.WorkerArgs == nil {
		c.WorkerArgs = []string{"worker"}
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.StablePeriod <= 0 {
		c.StablePeriod = 10 * time.Second
	}
	if c.ScrapeTimeout <= 0 {
		c.ScrapeTimeout = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// heartbeat is how often workers report: often enough that WorkerTimeout
// sees several beats.
func (c *Config) heartbeat() time.Duration {
	return min(time.Second, c.WorkerTimeout/4)
}

// ParseWorkers reads --workers: a positive count or "auto".
func ParseWorkers(s string) (int, error) {
	if s == "auto" {
		return UsableCPUs(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("bad worker count %q (want a positive number or auto)", s)
	}
	return n, nil
}

// UsableCPUs is the number of CPUs this process may run on (its affinity
// mask), lowered to the cgroup v2 CPU quota (cpu.max) when one is set,
// rounded up: a 1.5-CPU quota gets 2 workers.
func UsableCPUs() int {
	n := runtime.NumCPU() // the affinity mask
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		n = set.Count()
	}
	if q := cgroupQuota(); q > 0 && q < float64(n) {
		n = int(math.Ceil(q))
	}
	return max(n, 1)
}

// allowedCPUs lists the CPUs in this process's affinity mask.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// cgroupQuota reads the CPU quota of this process's cgroup v2 ("max" or no
// file: 0).
func cgroupQuota() float64 {
	path := "/sys/fs/cgroup/cpu.max"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		// cgroup v2: a single line "0::/path".
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				if _, err := os.Stat("/sys/fs/cgroup" + rest + "/cpu.max"); err == nil {
					path = "/sys/fs/cgroup" + rest + "/cpu.max"
				}
			}
		}
	}
	return parseCPUMax(path)
}

func parseCPUMax(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return 0
	}
	return quota / period
}
