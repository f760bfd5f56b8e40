package master

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/cpus"
	"github.com/prefork/prefork/reuseport"
	"github.com/prefork/prefork/wire"
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
	// ModeHandoff: one listening socket per address, kept by the master,
	// which accepts on it and hands each connection's fd to the worker
	// with the fewest open connections (SCM_RIGHTS on its control socket).
	ModeHandoff Mode = "handoff"
)

// Defaults of the master's own settings (the workers' are in wire).
const (
	DefaultMode          = ModeReusePort
	DefaultListen        = ":8080"
	DefaultWorkerTimeout = 30 * time.Second
	// DefaultMetricsListen is where /metrics is served unless told
	// otherwise. Loopback only: the series say a lot about the server.
	DefaultMetricsListen = "127.0.0.1:9464"
)

// Config is what the master runs: the workers' Settings, sent to each
// worker as they are, and the master's own.
type Config struct {
	wire.Settings

	Workers int      // worker slots at start (>= 1)
	Mode    Mode     // listener mode
	Addrs   []string // addresses to listen on
	// SocketActivation adopts the listening sockets systemd passed
	// (LISTEN_FDS for this pid) when there are any; Addrs is then ignored.
	SocketActivation bool

	WorkerTimeout time.Duration // a worker silent this long is aborted

	// Recycling (supervise.go): a worker that has served MaxRequests
	// requests, plus a number drawn in 0..MaxRequestsJitter when it starts,
	// or whose RSS passes MaxWorkerRSS bytes, is replaced as in a reload.
	// 0 is off. Checked at each heartbeat.
	MaxRequests       int
	MaxRequestsJitter int
	MaxWorkerRSS      int64

	PidFile string // written atomically at start, removed at exit ("" none)
	// MetricsListen is the address of /metrics, /healthz and /readyz ("" none).
	MetricsListen string
	// MetricsFallback: when MetricsListen cannot be bound (another instance
	// has the default port), serve on a free port of 127.0.0.1 instead and
	// say where. The CLI sets it only for the default address; an address
	// given explicitly that cannot be bound stops the start.
	MetricsFallback bool
	// ScrapeTimeout bounds how long a scrape waits for each worker. Default 1 s.
	ScrapeTimeout time.Duration
	AdminSocket   string // unix socket for `prefork status` ("" none)
	User, Group   string // workers run as this user/group (master must be root)
	// CPUAffinity pins worker slot k (the process, all its threads) to the
	// k-th CPU the master may use (modulo their number).
	CPUAffinity bool
	// RlimitNofile is the RLIMIT_NOFILE of master and workers: RlimitMax
	// (0) raises the soft limit to the hard one; a number sets both (a
	// hard limit above the current one needs root).
	RlimitNofile uint64

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

	// UpgradeCheck: this is an upgrade's pre-flight check of the
	// configuration (`prefork check-binary`, or a master checking its new
	// binary), not a start: a live pidfile is expected.
	UpgradeCheck bool
	// adopting: New runs in an image an upgrade started; the pidfile is
	// its own.
	adopting bool

	// cred is the identity workers run as, resolved from User and Group by
	// Validate (nil: the master's).
	cred *syscall.Credential
}

// SetDefaults fills the zero fields with their defaults.
func (c *Config) SetDefaults() {
	c.Settings.SetDefaults()
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.WorkerTimeout == 0 {
		c.WorkerTimeout = DefaultWorkerTimeout
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
}

// Validate checks everything that can be checked before a socket is bound or
// a worker forked (users and groups, addresses, durations, paths), and
// reports every problem at once, each naming its flag. It resolves --user
// and --group.
func (c *Config) Validate() error {
	errs := []error{c.Settings.Validate()}
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Workers < 1 {
		add("--workers %d: need at least one worker", c.Workers)
	}
	switch c.Mode {
	case ModeShared, ModeReusePort, ModeHandoff:
	default:
		add("unknown --mode %q (want reuseport, shared or handoff)", c.Mode)
	}
	if len(c.Addrs) == 0 && !c.SocketActivation {
		add("--listen: no address")
	}
	for _, a := range c.Addrs {
		if err := reuseport.CheckAddr(a); err != nil {
			add("--listen: %w", err)
		}
	}
	if c.MetricsListen != "" {
		if _, err := net.ResolveTCPAddr("tcp", c.MetricsListen); err != nil {
			add("--metrics-listen %q: %w", c.MetricsListen, err)
		}
	}
	if c.WorkerTimeout <= 0 {
		add("--worker-timeout %v: must be positive", c.WorkerTimeout)
	}
	if c.MaxRequests < 0 {
		add("--max-requests %d: must be 0 (off) or positive", c.MaxRequests)
	}
	switch {
	case c.MaxRequestsJitter < 0:
		add("--max-requests-jitter %d: must be 0 or positive", c.MaxRequestsJitter)
	case c.MaxRequestsJitter > 0 && c.MaxRequests == 0:
		add("--max-requests-jitter %d: needs --max-requests (jitter is added to it)", c.MaxRequestsJitter)
	}
	if c.MaxWorkerRSS < 0 {
		add("--max-worker-rss %d: must be 0 (off) or positive", c.MaxWorkerRSS)
	}
	if c.PidFile != "" {
		if err := checkDir(c.PidFile); err != nil {
			add("--pidfile %s: %w", c.PidFile, err)
		} else if pid := livePid(c.PidFile); pid != 0 && !c.UpgradeCheck && !c.adopting {
			add("--pidfile %s: prefork already running as pid %d", c.PidFile, pid)
		}
	}
	if c.AccessLog != "" && c.AccessLog != "-" {
		if err := checkDir(c.AccessLog); err != nil {
			add("--access-log %s: %w", c.AccessLog, err)
		}
	}
	if c.AdminSocket != "" {
		// sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
		if len(c.AdminSocket) > len(unix.RawSockaddrUnix{}.Path)-1 {
			add("--admin-socket %s: longer than %d bytes, the limit of a unix socket path",
				c.AdminSocket, len(unix.RawSockaddrUnix{}.Path)-1)
		} else if err := checkDir(c.AdminSocket); err != nil && (c.PidFile == "" || filepath.Dir(c.PidFile) != filepath.Dir(c.AdminSocket)) {
			// (A missing directory it shares with --pidfile is said once, there.)
			add("--admin-socket %s: %w", c.AdminSocket, err)
		}
	}
	if err := checkRlimit(c.RlimitNofile); err != nil {
		errs = append(errs, err)
	}
	if c.User != "" || c.Group != "" {
		cred, err := credential(c.User, c.Group)
		if err != nil {
			errs = append(errs, err)
		}
		c.cred = cred
	}
	return errors.Join(errs...)
}

// checkDir reports whether the directory path would be created in exists.
func checkDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// heartbeat is how often workers report: often enough that WorkerTimeout
// sees several beats.
func (c *Config) heartbeat() time.Duration {
	return min(time.Second, c.WorkerTimeout/4)
}

// AdminSocketFor is the admin socket a master with this pidfile listens on
// when --admin-socket is not given: PIDFILE.sock ("" without a pidfile).
// `prefork serve` and `prefork status` both derive it here.
func AdminSocketFor(pidfile, admin string) string {
	if admin == "" && pidfile != "" {
		return pidfile + ".sock"
	}
	return admin
}

// ParseWorkers reads --workers: a positive count or "auto" (the CPUs this
// process may use, honouring the cgroup CPU quota).
func ParseWorkers(s string) (int, error) {
	if s == "auto" {
		return cpus.Usable(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--workers %q: want a positive number or auto", s)
	}
	return n, nil
}

// credential resolves --user/--group into the identity workers run as, the
// way nginx resolves its user directive: a name or a numeric id, the user's
// primary group unless --group names another, and the user's supplementary
// groups (initgroups). The child switches identity after fork, before exec,
// so it has inherited the sockets already and never runs worker code as root.
//
// Groups is never nil: os.StartProcess calls setgroups(2) with it, so the
// master's own supplementary groups (root's) are replaced by exactly the
// user's memberships in the group database (their primary group is the gid
// already), or by none with --group alone or when the database cannot say.
// With --group alone the uid stays the master's: workers run as root.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("--user/--group: the master must run as root to switch the workers' identity (it runs as uid %d)", os.Geteuid())
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), Groups: []uint32{}}
	if userName != "" {
		u, err := lookupUser(userName)
		if err != nil {
			return nil, fmt.Errorf("--user %s: %w", userName, err)
		}
		uid, err := parseID(u.Uid)
		if err != nil {
			return nil, fmt.Errorf("--user %s: uid %q: %w", userName, u.Uid, err)
		}
		gid, err := parseID(u.Gid)
		if err != nil {
			return nil, fmt.Errorf("--user %s: gid %q: %w", userName, u.Gid, err)
		}
		cred.Uid, cred.Gid = uid, gid
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := parseID(s); err == nil && g != gid {
					cred.Groups = append(cred.Groups, g)
				}
			}
		}
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		if err != nil {
			return nil, fmt.Errorf("--group %s: %w", groupName, err)
		}
		gid, err := parseID(g.Gid)
		if err != nil {
			return nil, fmt.Errorf("--group %s: gid %q: %w", groupName, g.Gid, err)
		}
		cred.Gid = gid
	}
	return cred, nil
}

// lookupUser finds a user by name, or by id when the name is a number.
func lookupUser(s string) (*user.User, error) {
	u, err := user.Lookup(s)
	if err == nil {
		return u, nil
	}
	if _, perr := parseID(s); perr == nil {
		if u, ierr := user.LookupId(s); ierr == nil {
			return u, nil
		}
		return nil, fmt.Errorf("no user with id %s in the user database", s)
	}
	return nil, err
}

// lookupGroup finds a group by name, or by id when the name is a number.
func lookupGroup(s string) (*user.Group, error) {
	g, err := user.LookupGroup(s)
	if err == nil {
		return g, nil
	}
	if _, perr := parseID(s); perr == nil {
		if g, ierr := user.LookupGroupId(s); ierr == nil {
			return g, nil
		}
		return nil, fmt.Errorf("no group with id %s in the group database", s)
	}
	return nil, err
}

// parseID reads a uid or gid. 4294967295 is (uid_t)-1, which setuid(2)
// takes as "no change": never a valid identity.
func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if v == 1<<32-1 {
		return 0, errors.New("-1 is not an id")
	}
	return uint32(v), nil
}
