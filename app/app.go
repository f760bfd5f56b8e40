// Package app is the prefork command line: `prefork serve`, and the hidden
// roles the master re-executes itself into. A program with its own protocol
// runs the same CLI by calling Main with that protocol (see Protocol).
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/urfave/cli/v2"

	"github.com/prefork/prefork/buildinfo"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/master"
	"github.com/prefork/prefork/proto/calc"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/proto/httpd"
	"github.com/prefork/prefork/wire"
	"github.com/prefork/prefork/worker"
)

// The main goroutine stays on the main thread: the master forks its workers
// and makes an upgrade's execve there (master.LockMainThread says why).
func init() { master.LockMainThread() }

// Protocol is a named protocol the CLI can serve (--proto NAME).
type Protocol struct {
	Name  string
	Usage string
	// New builds the handler of one worker's loop from the workers'
	// settings. It is called once per worker process, on the worker's side of
	// the re-exec, so a program that registers a Protocol must register it the
	// same way on every start (call Main with it from main).
	New func(wire.Settings) loop.Handler
	// IdleTimeout is the protocol's default idle timeout (0: none).
	IdleTimeout time.Duration
	// Flags are the protocol's own flags, added to `serve`. Their values
	// reach the workers in wire.Settings.Flags (read them with
	// Settings.Flag), as the text the flag prints: a program's own
	// configuration survives the re-exec into workers.
	Flags []cli.Flag
}

// Builtin returns the protocols every prefork binary serves.
func Builtin() []Protocol {
	return []Protocol{
		{Name: "http", Usage: "HTTP/1.1: the files under --root, or 200 Hello, World! without it", IdleTimeout: 75 * time.Second,
			New: newHTTP},
		{Name: "echo", Usage: "every byte back", New: func(wire.Settings) loop.Handler { return echo.New() }},
		{Name: "calc", Usage: "length-prefixed integer calculator", New: func(wire.Settings) loop.Handler { return calc.New() }},
	}
}

// newHTTP builds the http protocol of one worker: a file server of --root
// (the directory the master opened, inherited; files below it are opened
// as the worker's --user), or the greeting.
func newHTTP(s wire.Settings) loop.Handler {
	opts := httpd.Options{MaxBody: s.MaxBody, MaxInflight: s.MaxInflight, AccessLog: s.AccessLogWriter()}
	if buildinfo.Set() && httpd.ValidServerName("prefork/"+buildinfo.Version) {
		// A release says which one it is, as nginx does (Server: nginx/1.22.1).
		opts.ServerName = "prefork/" + buildinfo.Version
	}
	if s.Root != "" {
		ropts := httpd.RootOptions{FollowSymlinks: s.FollowSymlinks}
		var root *httpd.Root
		var err error
		if fd, ok := s.RootFD(); ok {
			root, err = httpd.RootFromFD(fd, s.Root, ropts) // the master's
		} else {
			root, err = httpd.OpenRoot(s.Root, ropts)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "prefork worker: --root:", err)
			os.Exit(2)
		}
		opts.Handler = httpd.FileServer(root, httpd.FileOptions{CacheControl: s.CacheControl, Autoindex: s.Autoindex})
	}
	return httpd.New(opts)
}

// Main runs the prefork CLI with the built-in protocols and extra ones, and
// exits with its status.
func Main(extra ...Protocol) {
	if err := New(extra...).Run(os.Args); err != nil {
		// cli.Exit errors have already been printed with their code.
		fmt.Fprintln(os.Stderr, "prefork:", err)
		os.Exit(1)
	}
}

// New builds the CLI app.
func New(extra ...Protocol) *cli.App {
	protos := map[string]Protocol{}
	for _, p := range append(Builtin(), extra...) {
		protos[p.Name] = p
	}
	names := make([]string, 0, len(protos))
	for n := range protos {
		names = append(names, n)
	}
	sort.Strings(names)

	return &cli.App{
		Name:  "prefork",
		Usage: "a pre-fork server: a master supervising epoll worker processes",
		Commands: []*cli.Command{
			serveCommand(protos, names),
			workerCommand(protos),
			signalCommand("reload", "rolling reload of the running master's workers (HUP)", unix.SIGHUP, false),
			signalCommand("stop", "graceful stop of the running master (TERM); waits for it to exit", unix.SIGTERM, true),
			statusCommand(),
			upgradeCommand(),
			checkBinaryCommand(),
			versionCommand(),
			scaleCommand(),
		},
		ExitErrHandler: func(c *cli.Context, err error) {
			if err == nil {
				return
			}
			if ec, ok := err.(cli.ExitCoder); ok {
				fmt.Fprintln(os.Stderr, "prefork:", ec.Error())
				os.Exit(ec.ExitCode())
			}
		},
	}
}

func env(name string) []string { return []string{"PREFORK_" + name} }

func serveCommand(protos map[string]Protocol, names []string) *cli.Command {
	cmd := serveFlags(protos, names)
	seen := map[string]bool{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			seen[n] = true
		}
	}
	for _, name := range names {
		for _, f := range protos[name].Flags {
			for _, n := range f.Names() {
				if seen[n] {
					panic(fmt.Sprintf("app: protocol %s: flag --%s is defined twice", name, n))
				}
				seen[n] = true
			}
			cmd.Flags = append(cmd.Flags, f)
		}
	}
	return cmd
}

func serveFlags(protos map[string]Protocol, names []string) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "start the master and its workers",
		Description: "Signals to the master: TERM graceful stop, INT/QUIT fast stop, HUP rolling reload,\n" +
			"TTIN/TTOU one worker more/less. See README.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "workers", Value: "auto", EnvVars: env("WORKERS"),
				Usage: "number of worker processes, or auto (usable CPUs, honouring the cgroup CPU quota)"},
			&cli.StringSliceFlag{Name: "listen", Value: cli.NewStringSlice(master.DefaultListen), EnvVars: env("LISTEN"),
				Usage: "address to listen on, host:port or [v6]:port (repeatable); unset under systemd socket activation: the sockets systemd passed"},
			&cli.StringFlag{Name: "mode", Value: string(master.DefaultMode), EnvVars: env("MODE"),
				Usage: "how connections reach workers: reuseport (a SO_REUSEPORT socket per worker), shared (one socket, EPOLLEXCLUSIVE) or handoff (the master accepts and hands each connection to the least-loaded worker)"},
			&cli.StringFlag{Name: "proto", Value: "http", EnvVars: env("PROTO"),
				Usage: "protocol: " + strings.Join(names, "|")},
			&cli.DurationFlag{Name: "idle-timeout", EnvVars: env("IDLE_TIMEOUT"),
				Usage:       "close connections idle this long; 0 never",
				DefaultText: "the protocol's: 75s for http, none otherwise"},
			&cli.DurationFlag{Name: "header-timeout", Value: wire.DefaultHeaderTimeout, EnvVars: env("HEADER_TIMEOUT"),
				Usage: "a request head (http) or frame (calc) must complete this long after its first byte (http answers 408); 0 never"},
			&cli.DurationFlag{Name: "write-timeout", Value: wire.DefaultWriteTimeout, EnvVars: env("WRITE_TIMEOUT"),
				Usage: "close a connection whose pending output makes no progress for this long (a client that does not read); 0 never"},
			&cli.IntFlag{Name: "max-conns", EnvVars: env("MAX_CONNS"),
				Usage:       "open connections per worker; at the limit the worker stops accepting and new connections wait in the kernel's backlog",
				DefaultText: fmt.Sprintf("0: the worker's fd limit (--rlimit-nofile) minus %d", wire.ConnsReserve)},
			&cli.StringFlag{Name: "rlimit-nofile", Value: "max", EnvVars: env("RLIMIT_NOFILE"),
				Usage: "the fd limit (RLIMIT_NOFILE) of master and workers: max raises the soft limit to the hard one; a number sets both (raising the hard limit needs root)"},
			&cli.StringFlag{Name: "max-body", Value: "1m", EnvVars: env("MAX_BODY"),
				Usage: "http: the largest request body buffered for a handler (bytes, or with k, m, g); larger gets 413"},
			&cli.StringFlag{Name: "root", EnvVars: env("ROOT"),
				Usage: "http: serve the files under this directory (sendfile, ETag, ranges, index.html, precompressed .br/.gz) instead of the greeting"},
			&cli.StringFlag{Name: "cache-control", EnvVars: env("CACHE_CONTROL"),
				Usage: "http: a Cache-Control value sent with files (e.g. \"public, max-age=3600\"); none by default"},
			&cli.BoolFlag{Name: "autoindex", EnvVars: env("AUTOINDEX"),
				Usage: "http: list directories under --root that have no index.html (off: 404)"},
			&cli.BoolFlag{Name: "follow-symlinks", EnvVars: env("FOLLOW_SYMLINKS"),
				Usage: "http: follow symbolic links under --root that stay inside it (links out of it are always refused)"},
			&cli.StringFlag{Name: "access-log", EnvVars: env("ACCESS_LOG"),
				Usage: "http: one line per request (time, client, request line, status, bytes, seconds) to this file, or - for stdout; off by default"},
			&cli.IntFlag{Name: "max-inflight", Value: wire.DefaultMaxInflight, EnvVars: env("MAX_INFLIGHT"),
				Usage: "http: deferred and net/http requests in flight per worker; past it new requests wait in the kernel"},
			&cli.DurationFlag{Name: "graceful-timeout", Value: wire.DefaultGracefulTimeout, EnvVars: env("GRACEFUL_TIMEOUT"),
				Usage: "on TERM or reload, how long open connections may finish before they are cut"},
			&cli.DurationFlag{Name: "worker-timeout", Value: master.DefaultWorkerTimeout, EnvVars: env("WORKER_TIMEOUT"),
				Usage: "a worker whose loop sends no heartbeat for this long is aborted and replaced"},
			&cli.IntFlag{Name: "max-requests", EnvVars: env("MAX_REQUESTS"),
				Usage: "recycle a worker once it has served this many requests (plus its jitter): a new worker for its slot first, then the old one drained, as in a reload; 0 off"},
			&cli.IntFlag{Name: "max-requests-jitter", EnvVars: env("MAX_REQUESTS_JITTER"),
				Usage: "add a random 0..J to each worker's --max-requests, drawn when it starts, so workers do not all recycle at once"},
			&cli.StringFlag{Name: "max-worker-rss", Value: "0", EnvVars: env("MAX_WORKER_RSS"),
				Usage: "recycle a worker whose resident memory passes this size (bytes, or with k, m, g), checked at each heartbeat; 0 off"},
			&cli.StringFlag{Name: "metrics-listen", Value: master.DefaultMetricsListen, EnvVars: env("METRICS_LISTEN"),
				Usage: "serve /metrics (every worker's series, labelled worker=\"slot\"), /healthz and /readyz here; empty disables. " +
					"If the default address is taken (a second prefork), a free port is used and logged; an address given explicitly must bind"},
			&cli.StringFlag{Name: "pidfile", EnvVars: env("PIDFILE"),
				Usage: "write the master's pid here (atomically; removed on exit)"},
			&cli.StringFlag{Name: "admin-socket", EnvVars: env("ADMIN_SOCKET"),
				Usage:       "unix socket answering prefork status",
				DefaultText: "PIDFILE.sock when --pidfile is set"},
			&cli.BoolFlag{Name: "cpu-affinity", EnvVars: env("CPU_AFFINITY"),
				Usage: "pin worker slot k (the whole process) to the k-th usable CPU"},
			&cli.StringFlag{Name: "user", EnvVars: env("USER"),
				Usage: "run workers as this user, a name or a uid (the master must be root; it keeps the sockets)"},
			&cli.StringFlag{Name: "group", EnvVars: env("GROUP"),
				Usage:       "run workers with this group, a name or a gid",
				DefaultText: "the user's primary group"},
			&cli.StringFlag{Name: "log-format", Value: string(wire.DefaultLogFormat), EnvVars: env("LOG_FORMAT"),
				Usage: "log format: text|json"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: env("LOG_LEVEL"),
				Usage: "log level: debug|info|warn|error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("serve takes no arguments (got %q)", c.Args().Slice()), 2)
			}
			cfg, err := serveConfig(c, protos, names)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if cfg.UpgradeCheck {
				// A pre-flight check (master.UpgradeCheckEnv): the
				// configuration is valid for this binary; bind nothing.
				fmt.Fprintf(c.App.Writer, "%s format=%d version=%s\n", master.CheckToken, master.UpgradeFormat, buildinfo.String())
				return nil
			}
			m, err := master.New(cfg)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if err := m.Run(); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			return nil
		},
	}
}

// serveConfig maps the serve flags onto a master.Config and validates it:
// every setting that cannot work is reported here, before a socket is bound.
func serveConfig(c *cli.Context, protos map[string]Protocol, names []string) (master.Config, error) {
	var errs []error
	level, err := wire.ParseLogLevel(c.String("log-level"))
	errs = append(errs, err)
	maxBody, err := wire.ParseSize(c.String("max-body"))
	if err != nil {
		errs = append(errs, fmt.Errorf("--max-body: %w", err))
	} else if maxBody == 0 {
		errs = append(errs, errors.New("--max-body 0: want at least 1 byte"))
	}
	maxRSS, err := wire.ParseSize(c.String("max-worker-rss"))
	if err != nil {
		errs = append(errs, fmt.Errorf("--max-worker-rss: %w", err))
	}
	workers, err := master.ParseWorkers(c.String("workers"))
	if err != nil {
		errs = append(errs, err)
		workers = 1 // reported; the other checks go on
	}
	p, ok := protos[c.String("proto")]
	if !ok {
		errs = append(errs, fmt.Errorf("unknown --proto %q (want one of %s)", c.String("proto"), strings.Join(names, ", ")))
	}
	cfg := master.Config{
		Settings: wire.Settings{
			Proto:           p.Name,
			IdleTimeout:     p.IdleTimeout,
			HeaderTimeout:   c.Duration("header-timeout"),
			WriteTimeout:    c.Duration("write-timeout"),
			MaxConns:        c.Int("max-conns"),
			GracefulTimeout: c.Duration("graceful-timeout"),
			Log:             wire.Log{Format: wire.LogFormat(c.String("log-format")), Level: level},
			MaxBody:         maxBody,
			MaxInflight:     c.Int("max-inflight"),
			AccessLog:       c.String("access-log"),
			Root:            c.String("root"),
			CacheControl:    c.String("cache-control"),
			FollowSymlinks:  c.Bool("follow-symlinks"),
			Autoindex:       c.Bool("autoindex"),
		},
		Workers:       workers,
		Mode:          master.Mode(c.String("mode")),
		Addrs:         c.StringSlice("listen"),
		WorkerTimeout: c.Duration("worker-timeout"),
		// Recycling
		MaxRequests:       c.Int("max-requests"),
		MaxRequestsJitter: c.Int("max-requests-jitter"),
		MaxWorkerRSS:      maxRSS,
		PidFile:           c.String("pidfile"),
		MetricsListen:     c.String("metrics-listen"),
		// Only the default address may move when taken.
		MetricsFallback: !c.IsSet("metrics-listen"),
		AdminSocket:     master.AdminSocketFor(c.String("pidfile"), c.String("admin-socket")),
		User:            c.String("user"),
		Group:           c.String("group"),
		CPUAffinity:     c.Bool("cpu-affinity"),
	}
	if cfg.RlimitNofile, err = master.ParseRlimitNofile(c.String("rlimit-nofile")); err != nil {
		errs = append(errs, err)
	}
	for _, f := range p.Flags {
		if cfg.Flags == nil {
			cfg.Flags = map[string]string{}
		}
		name := f.Names()[0]
		cfg.Flags[name] = fmt.Sprint(c.Value(name))
	}
	if c.IsSet("idle-timeout") {
		cfg.IdleTimeout = c.Duration("idle-timeout")
	}
	// Without --listen, the sockets systemd passed, if any; else the default.
	cfg.SocketActivation = !c.IsSet("listen")
	cfg.UpgradeCheck = os.Getenv(master.UpgradeCheckEnv) != ""
	cfg.Logger = cfg.Log.NewLogger(os.Stderr)
	if !ok {
		cfg.Proto = c.String("proto") // for Validate's other checks; the error above stands
	}
	cfg.SetDefaults()
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// workerCommand is the hidden role the master re-executes into.
func workerCommand(protos map[string]Protocol) *cli.Command {
	return &cli.Command{
		Name:   "worker",
		Hidden: true,
		Usage:  "internal: a worker process started by the master",
		Action: func(c *cli.Context) error {
			// The loop runs better on a goroutine the runtime may move
			// (BENCHMARKS.md); init locked this one for the master's sake.
			runtime.UnlockOSThread()
			spec, err := wire.ReadSpec()
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			log := spec.Log.NewLogger(os.Stderr)
			p, ok := protos[spec.Proto]
			if !ok {
				return cli.Exit(fmt.Sprintf("worker: unknown protocol %q", spec.Proto), 2)
			}
			if err := worker.Run(spec, p.New, log); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			return nil
		},
	}
}

var controlFlags = []cli.Flag{
	&cli.StringFlag{Name: "pidfile", EnvVars: env("PIDFILE"), Usage: "the running master's pidfile"},
	&cli.StringFlag{Name: "admin-socket", EnvVars: env("ADMIN_SOCKET"), Usage: "the running master's admin socket",
		DefaultText: "PIDFILE.sock"},
}

func masterPid(c *cli.Context) (int, error) {
	path := c.String("pidfile")
	if path == "" {
		return 0, cli.Exit("need --pidfile (or PREFORK_PIDFILE)", 2)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, cli.Exit(fmt.Sprintf("no running master: %v", err), 1)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, cli.Exit(fmt.Sprintf("pidfile %s: bad contents %q", path, b), 1)
	}
	return pid, nil
}

func signalCommand(name, usage string, sig unix.Signal, wait bool) *cli.Command {
	flags := append([]cli.Flag{}, controlFlags...)
	if wait {
		flags = append(flags, &cli.DurationFlag{Name: "timeout", Value: 60 * time.Second,
			Usage: "how long to wait for the master to exit"})
	}
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: flags,
		Action: func(c *cli.Context) error {
			pid, err := masterPid(c)
			if err != nil {
				return err
			}
			if err := unix.Kill(pid, sig); err != nil {
				return cli.Exit(fmt.Sprintf("signal master %d: %v", pid, err), 1)
			}
			if !wait {
				return nil
			}
			deadline := time.Now().Add(c.Duration("timeout"))
			for unix.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					return cli.Exit(fmt.Sprintf("master %d still running after %s", pid, c.Duration("timeout")), 1)
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "print the running master's workers",
		Flags: append(append([]cli.Flag{}, controlFlags...),
			&cli.BoolFlag{Name: "json", Usage: "print the raw JSON"}),
		Action: func(c *cli.Context) error {
			path, err := adminSocket(c)
			if err != nil {
				return err
			}
			st, err := master.QueryStatus(path)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(st)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "master pid %d, prefork %s, %s mode, proto %s, %d workers desired, %d running, %d reloads, up %s\n",
				st.PID, st.Version, st.Mode, st.Proto, st.Desired, st.Running, st.Reloads, seconds(st.Uptime))
			if u := st.Upgrade; u != nil {
				fmt.Fprintf(w, "last upgrade: #%d %s (%s -> %s)", u.Seq, u.State, u.From, orNone(u.To))
				if u.Error != "" {
					fmt.Fprintf(w, ": %s", u.Error)
				}
				fmt.Fprintln(w)
			}
			metricsAt := st.Metrics
			if metricsAt == "" {
				metricsAt = "off"
			}
			fmt.Fprintf(w, "listening on %s, metrics on %s\n", strings.Join(st.Addrs, " "), metricsAt)
			fmt.Fprintln(w, "SLOT\tPID\tGEN\tUPTIME\tSTATE\tRESTARTS")
			for _, ws := range st.Workers {
				fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%d\n", ws.Slot, ws.PID, ws.Generation, seconds(ws.Uptime), ws.State, ws.Restarts)
			}
			return w.Flush()
		},
	}
}

// scaleCommand is `prefork scale N`: an absolute worker count over the
// admin socket, answered once N workers serve (signals can merge: two quick
// TTOUs may retire one slot).
func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "set the running master's number of workers to N; returns when N workers are ready and retired ones have exited",
		ArgsUsage: "N",
		Flags: append(append([]cli.Flag{}, controlFlags...),
			&cli.DurationFlag{Name: "timeout", Value: master.DefaultScaleTimeout,
				Usage: "how long to wait for the count to be reached"}),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			// The flags may follow N (prefork scale 4 --pidfile P): the CLI
			// stops reading flags at the first argument, so read them here.
			pidfile, admin, timeout := c.String("pidfile"), c.String("admin-socket"), c.Duration("timeout")
			if len(args) > 1 {
				fs := flag.NewFlagSet("scale", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				fs.StringVar(&pidfile, "pidfile", pidfile, "")
				fs.StringVar(&admin, "admin-socket", admin, "")
				fs.DurationVar(&timeout, "timeout", timeout, "")
				if err := fs.Parse(args[1:]); err != nil {
					return cli.Exit(fmt.Sprintf("scale: %v", err), 2)
				}
				args = append(args[:1], fs.Args()...)
			}
			if len(args) != 1 {
				return cli.Exit(fmt.Sprintf("scale: want one argument N, the number of workers (got %q)", args), 2)
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return cli.Exit(fmt.Sprintf("scale: argument N %q: want a whole number of workers, at least 1", args[0]), 2)
			}
			if timeout <= 0 {
				return cli.Exit(fmt.Sprintf("scale: --timeout %v: must be positive", timeout), 2)
			}
			path := master.AdminSocketFor(pidfile, admin)
			if path == "" {
				return cli.Exit("need --pidfile or --admin-socket", 2)
			}
			st, err := master.Scale(path, n, timeout)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Fprintf(c.App.Writer, "%d workers desired, %d running\n", st.Desired, st.Running)
			return nil
		},
	}
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// adminSocket is the running master's admin socket, from --admin-socket or
// --pidfile (PIDFILE.sock), for the commands that talk to it.
func adminSocket(c *cli.Context) (string, error) {
	path := master.AdminSocketFor(c.String("pidfile"), c.String("admin-socket"))
	if path == "" {
		return "", cli.Exit("need --pidfile or --admin-socket", 2)
	}
	return path, nil
}

func orNone(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print this binary's version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "prefork %s (%s, %s)\n", buildinfo.String(), buildinfo.Revision(), runtime.Version())
			return nil
		},
	}
}

// upgradeCommand asks the running master to re-execute its binary in place
// and waits for the outcome.
func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name: "upgrade",
		Usage: "upgrade the running master in place to the binary now at its path (as USR2, keeping the PID), " +
			"and wait until every worker runs it, or until it failed or rolled back",
		Flags: append(append([]cli.Flag{}, controlFlags...),
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to wait for the outcome"}),
		Action: func(c *cli.Context) error {
			path, err := adminSocket(c)
			if err != nil {
				return err
			}
			u, err := master.RequestUpgrade(path)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			fmt.Fprintf(c.App.Writer, "upgrade #%d of %s: checking %s\n", u.Seq, u.From, u.Path)
			deadline := time.Now().Add(c.Duration("timeout"))
			last := u.State
			for {
				st, err := master.QueryStatus(path)
				// During the exec the admin socket is carried over: a
				// query waits in its queue; an error is worth a retry.
				if err == nil && st.Upgrade != nil && st.Upgrade.Seq == u.Seq {
					cur := *st.Upgrade
					if cur.State != last {
						last = cur.State
						if !cur.Finished() {
							fmt.Fprintf(c.App.Writer, "upgrade #%d: %s\n", cur.Seq, cur.State)
						}
					}
					if cur.Finished() {
						switch cur.State {
						case master.UpgradeDone:
							fmt.Fprintf(c.App.Writer, "upgrade #%d done: pid %d now runs prefork %s (was %s), %d/%d workers ready\n",
								cur.Seq, st.PID, st.Version, cur.From, st.Running, st.Desired)
							return nil
						case master.UpgradeRolledBack:
							return cli.Exit(fmt.Sprintf("upgrade #%d rolled back: pid %d runs prefork %s again: %s",
								cur.Seq, st.PID, st.Version, cur.Error), 1)
						default:
							return cli.Exit(fmt.Sprintf("upgrade #%d failed: pid %d still runs prefork %s: %s",
								cur.Seq, st.PID, st.Version, cur.Error), 1)
						}
					}
				}
				if time.Now().After(deadline) {
					return cli.Exit(fmt.Sprintf("upgrade #%d: no outcome after %s (state %q); see prefork status and the master's log", u.Seq, c.Duration("timeout"), last), 1)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
}

// checkBinaryCommand runs a binary's pre-flight check: what the master runs
// before an upgrade, with the serve flags given here.
func checkBinaryCommand() *cli.Command {
	return &cli.Command{
		Name:      "check-binary",
		Usage:     "check that PATH is a prefork binary an upgrade can execute, and that it accepts the serve flags given after it",
		ArgsUsage: "PATH [serve flags...]",
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("check-binary: need the PATH of the new binary", 2)
			}
			path := c.Args().First()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, path, append([]string{"serve"}, c.Args().Tail()...)...)
			cmd.Env = append(os.Environ(), master.UpgradeCheckEnv+"=1")
			out, runErr := cmd.CombinedOutput()
			version, err := master.ParseCheck(out, runErr == nil)
			if err != nil {
				if runErr != nil {
					err = fmt.Errorf("%v: %w", runErr, err)
				}
				return cli.Exit(fmt.Sprintf("check-binary %s: %v", path, err), 1)
			}
			fmt.Fprintf(c.App.Writer, "%s: prefork %s, upgrade format %d: its configuration is valid\n", path, version, master.UpgradeFormat)
			return nil
		},
	}
}
