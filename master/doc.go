// Package master is prefork's supervisor: it owns the listening sockets and
// the worker processes.
//
// # Roles
//
// The same binary runs in two roles. `prefork serve` is the master; it starts
// each worker by re-executing /proc/self/exe with the hidden `worker` command
// (argv "prefork worker slot=K", so ps shows which is which). A worker reads
// its wire.Spec from PREFORK_WORKER_SPEC (JSON: the master's wire.Settings as
// they are, plus slot, generation, listener addresses, heartbeat interval and
// CPU), removes it from its environment, builds the protocol handler and runs
// one epoll loop (package worker, package loop). A program that registers its
// own protocol with app.Main gets both roles the same way. Package wire is the
// whole contract between the two: master imports it, not worker or loop.
//
// # Settings
//
// Config embeds wire.Settings, the one definition of what every worker needs;
// the CLI maps flags onto Config and New runs Config.Validate before anything
// is bound or forked: users and groups (resolved once, into the credential
// workers are started with), addresses, durations, paths. A setting that
// cannot work stops the start with a message naming its flag, never a crash
// loop of workers.
//
// # File descriptors a worker inherits
//
//	0, 1, 2    the master's stdin, stdout, stderr (logs go to stderr)
//	3          control socket: the worker's end of a SOCK_SEQPACKET socketpair
//	4 .. 4+n-1 the listening sockets, in the order of --listen
//
// Nothing else: the master's own fds are close-on-exec, and the worker sets
// FD_CLOEXEC on the inherited ones once it has them, so a program a handler
// might start inherits nothing. In shared mode fd 4.. are the same sockets in
// every worker; in reuseport mode they are slot K's sockets only; in handoff
// mode there are none (the master keeps the listeners; connections arrive on
// fd 3). Connection fds never leave the worker that accepted them, or, in
// handoff mode, the worker the master handed them to.
//
// The environment variables systemd sets for the master alone (NOTIFY_SOCKET,
// LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, WATCHDOG_*) are removed from the
// workers' environment.
//
// # Control messages
//
// One datagram per message (no framing; EOF means the other side died):
//
//	worker → master   READY (listeners in the epoll set), HB <conns> <requests>
//	                  (heartbeat from the loop thread; a worker of an older binary
//	                  sends HB <conns>, read as requests unknown), METRICS
//	                  <id>\n<registry> (a scrape's answer),
//	                  GONE <n> (handoff mode: handed connections no longer open)
//	master → worker   STOP (graceful), QUIT (fast), RETIRE (accept what is queued, then
//	                  STOP), METRICS <id> (gather the registry on the loop thread),
//	                  FDS <kinds> + SCM_RIGHTS (handoff mode: connections)
//
// wire/control.go and wire/handoff.go have the formats and the encoders and
// parsers both sides use.
//
// # Who owns what
//
// One goroutine (Run) owns the worker table. Signals, child exits (reaped with
// wait4(-1) on SIGCHLD), control messages (one reader goroutine per worker,
// ending at EOF), restart timers, a 100 ms tick and admin requests all arrive
// there as events on one channel. Workers are forked from one goroutine locked
// to its OS thread for the master's life, because Pdeathsig fires when the
// forking thread exits, not the process.
//
// # Handoff mode
//
// With --mode handoff the master accepts. Its acceptor (acceptor.go) is one
// goroutine running a raw epoll loop of its own over the listening sockets
// (level-triggered) and an eventfd, apart from the supervisor's goroutine:
// each wake-up accepts what the kernel has queued (up to 4×253), places each
// connection, sends every worker its share in one sendmsg per 253 fds
// (SCM_MAX_FD) on its control socket (FDS <kinds> with SCM_RIGHTS, non-
// blocking), and closes the master's copies at once, so a connection lives
// in exactly one worker and the master holds none. The worker receives with
// recvmsg(MSG_CMSG_CLOEXEC) and adds each fd to its loop (loop.AddConn) as
// if it had accepted it.
//
// Placement: the worker with the fewest open connections, ties round-robin
// (a cursor that moves past each choice). Only workers that said READY and
// have not been told to stop take connections: a worker is added at READY
// and removed, synchronously, before STOP, RETIRE or QUIT is sent (so every
// FDS message is in its socket ahead of the stop), when it is aborted as
// hung, and when it exits. A worker whose socket is full (sendmsg EAGAIN) is
// skipped for 5 ms; one whose send fails otherwise (EPIPE: it died) is
// dropped; either way the connections meant for it go to the others in the
// same turn (prefork_handoff_errors_total{reason="socket_full"|"worker_gone"}).
// With no worker able to take connections (all starting, restarting or
// full), the listeners leave the acceptor's epoll set, and new connections
// wait in the kernel's accept queue, as they would for a worker in the other
// modes; connections already accepted wait up to 5 s for one, then are
// closed (reason="no_worker": the only connections the master loses).
//
// The counts are the master's own: connections handed to a worker minus the
// worker's last GONE report, a cumulative count of the handed connections it
// no longer has open (so a report lost to a full socket costs staleness,
// never a wrong count). A worker reports within 10 ms of each FDS message it
// receives, and with every heartbeat (every second at most). So the counts
// are stale by the closes of the last 10 ms for a worker being handed
// connections, and of the last heartbeat interval (up to a second) for one
// that is not. They are never low: a connection counts from the moment it is
// handed, in flight included, and a close counts only once reported. A burst
// of new connections is therefore spread exactly (64 at once over 4 workers:
// 16 each), and no worker is ever flooded for looking emptier than it is.
// What staleness costs is the other way round: a worker whose connections
// have just closed looks busier than it is, and gets fewer new connections
// than it could until its next report; under a churn of short connections
// placement tends to round-robin among the workers, which is as good as the
// counts allow. prefork_handoff_open_connections{worker} is the master's
// estimate, beside each worker's own prefork_connections_active.
//
// Reload and scale keep their guarantees: the listeners stay open and in the
// master throughout (they close only at the stop); an old worker or a
// retiring one is told RETIRE rather than STOP (it serves on for 300 ms
// before it drains), so a connection handed to it in the instant before has
// its first request read before the drain would close it as idle. A worker
// that dies loses the connections it held and those in its socket not yet
// received (the kernel closes them with the socket); none other.
//
// # Signals
//
//	TERM      graceful stop: in handoff mode the acceptor stops first (what
//	          the kernel has queued is accepted and handed out); STOP to
//	          every worker, the master's sockets closed;
//	          workers finish requests in flight, close idle keep-alive
//	          connections, and are killed if still running after
//	          --graceful-timeout + 5 s; exit 0 when all are gone
//	INT, QUIT fast stop: QUIT to every worker (SIGKILL after 5 s); exit 0
//	HUP       rolling reload, slot by slot: start generation g+1, wait for its
//	          READY, then STOP generation g. A replacement that dies before
//	          READY leaves the old worker in place; an old worker that dies
//	          while its replacement starts leaves the slot to the replacement.
//	          A HUP during a reload starts it over after the replacement in
//	          flight; a TTOU that retires the slot in flight moves it on.
//	TTIN      one more slot (in reuseport mode with new sockets joining the
//	          groups)
//	TTOU      retire the highest slot: steer new connections away from its
//	          sockets (SO_ATTACH_REUSEPORT_CBPF), RETIRE its worker (it accepts
//	          what is queued and drains), close the sockets when it has exited
//	CHLD      reap; an unexpected exit is a crash
//	USR2      upgrade the binary in place, keeping the PID (below)
//
// # Upgrade in place
//
// USR2, or `prefork upgrade` over the admin socket, replaces the running
// binary without a new PID: systemd's MAINPID stays right (Type=notify,
// NotifyAccess=main), nothing listens anew, nothing is refused.
//
//  1. Queued while a reload, a recycle or a worker start is in flight (a
//     READY the old image read would be lost in the exec), and the exec
//     waits likewise for one that began during the check; refused while an
//     upgrade runs or the master stops.
//  2. Check (prefork_upgrades_total{result="check_failed"} if it fails):
//     the binary at the master's original path (os.Executable at the
//     start: where the deploy put the new file) is run with the master's
//     own arguments and PREFORK_UPGRADE_CHECK=1. `prefork serve` then
//     validates the configuration, binds nothing, and prints "prefork-
//     upgrade-check ok format=1 version=V"; a binary that is missing, not
//     executable, exits non-zero, prints anything else, speaks another
//     state format or takes more than 10 s fails the check. Nothing has
//     changed; logs and `prefork status` ("last upgrade: #N failed: ...")
//     say why. `prefork check-binary PATH [flags]` runs the same check.
//  3. Exec: RELOADING=1 with MONOTONIC_USEC and STATUS=upgrading to
//     systemd; the handoff acceptor hands out what it holds and stops
//     (new connections wait in the kernel's queue); the reaper stops (an
//     exit from here on stays a zombie for the next image). Every fd the
//     next image needs is made inheritable — the listeners (shared, and
//     every reuseport slot's and retiring slot's, in their groups' order),
//     a duplicate of each worker's control socket, of the metrics and
//     admin listeners, the access log, the --root directory, and an fd of
//     the running binary (/proc/self/exe) for a rollback — and described in
//     PREFORK_UPGRADE_STATE (JSON: slots with generations and restart
//     counts, each worker's pid, slot, generation, state, binary and
//     handoff counts, the retired slots, the upgrade's record and counts).
//     execve runs on the main thread: every worker was forked from it, so
//     it is the thread that survives the exec and no worker's Pdeathsig
//     fires (package app locks the main goroutine there in an init, via
//     LockMainThread; Run then serves fork and exec requests on it). If
//     execve fails, everything is undone and the old image goes on
//     (result="exec_failed").
//  4. The new image's New reads and removes the state, adopts the sockets
//     (close-on-exec again), and Run adopts the workers — still its
//     children, reaped by wait4 as before, their control sockets read as
//     before — reaps what exited meanwhile, and catches the master's
//     signals from its first instant (a TERM before Run's signal.Notify
//     would otherwise end it). Then it replaces the workers slot by slot as
//     a HUP reload does, on the new binary (/proc/self/exe is the new file
//     now): new worker READY, old one drained. At the end: READY=1 with
//     STATUS= naming the version, result="ok", state done.
//  5. Rollback: if a new worker dies or fails to get READY before it was
//     ready (WorkerTimeout), the new image execs the old binary through the
//     fd it was given (/proc/self/fd/N, the file may be gone from disk),
//     handing everything back the same way; that image adopts the workers
//     and replaces any the failed binary started (by binary identity, the
//     device and inode of /proc/self/exe). result="rolled_back"; status
//     says "rolled_back (v1 -> v2): the new binary's worker for slot 0
//     died (exit 3) before it was ready"; `prefork upgrade` exits 1.
//
// What is not covered: a new binary that passes the check and then
// crashes in its master before adopting (a panic in New) takes the
// workers with it, since they are the process's children; systemd then
// restarts the service. A signal that reaches the old image in the
// milliseconds between preparing the state and execve is lost.
//
// Signals of one kind sent twice before the master handles the first merge
// into one (a standard signal has one pending instance; Go's runtime keeps
// one too), so two quick TTOUs may retire one slot. For an exact count there
// is the admin command "scale N [TIMEOUT]" (prefork scale N, scale.go): it
// sets the count absolutely (idempotent: scale 4 at 4 changes nothing) and
// is answered when N slots have a ready worker and every retired slot's
// worker has exited, or at the client's TIMEOUT (default 60 s) with what was
// reached; a TTIN, TTOU or other scale meanwhile supersedes it (an error
// says so). Status has workers_desired and workers_running (ready slots).
//
// # Supervision
//
// A crashed worker is replaced at once; a slot that keeps crashing backs off
// 100 ms, 200 ms, 400 ms … up to 30 s, and the count resets once a worker has
// run for 10 s. A worker that sends no heartbeat for --worker-timeout (its
// loop is stuck: heartbeats come from the loop's own timer) gets SIGABRT, for
// a goroutine dump, and SIGKILL 3 s later; its exit is then a crash like any
// other. So does a worker that heartbeats but has not said READY within
// --worker-timeout of its start.
//
// Recycling (recycle.go) replaces a healthy worker on purpose, the way a
// reload does: with --max-requests N a worker that has served N requests,
// plus a number drawn in 0..--max-requests-jitter J when it starts (so the
// workers started together do not all go at once), and with
// --max-worker-rss SIZE one whose RSS (VmRSS in /proc/PID/status) has passed
// SIZE. Both are checked when the worker's heartbeat arrives: it carries the
// requests served, the protocol's own count (a worker.Requester: HTTP
// responses, calc frames, echo reads) or, for a protocol that keeps none,
// the connections accepted; a worker of an older binary, adopted by a master
// upgraded in place, sends no count and is recycled by RSS only. The
// worker knows its limit (Spec.RecycleAfter) and also heartbeats the loop
// turn it reaches it, so a busy worker is not a second of requests past it
// when its replacement starts; a worker that reached it while another
// slot's recycle was in flight goes as soon as that one is done. Its
// slot's replacement starts first; once it is READY the old worker is told
// STOP and drains (RETIRE in handoff mode). It is counted in
// prefork_worker_restarts_total{reason="max_requests"|"max_rss"} and logged
// ("recycling worker", "worker recycled"), not in the slot's restarts. A
// recycle is not a reload (its replacement is marked recycle, not reload).
// One recycle is in flight at a time: the next starts once the last one's
// replacement is READY, so workers that pass their limits in the same
// heartbeat go one after the other. None starts while the master stops, for a slot that has a replacement
// starting or that a reload has still to replace, or for a worker that is
// stopping or retiring; a HUP while one is in flight waits for it and then
// replaces it too; a TTOU retires both. A replacement that dies before READY
// leaves the old worker serving, and the slot is not recycled again for 5 s,
// doubling with each failure in a row (up to the crash backoff's cap).
//
// Workers never outlive the master: Pdeathsig=SIGKILL covers a master
// that is killed, EOF on the control socket a master that exits; a master
// running as PID 1 reaps every child, not only its workers.
//
// # Privileges
//
// With --user (and --group) the master runs as root and its workers as that
// user. The switch happens in the child between fork and exec
// (SysProcAttr.Credential, from credential in config.go): setgroups, setgid,
// setuid. Done as root, these set all four ids — real, effective, saved and
// filesystem — so a worker's /proc/PID/status reads "Uid: 65534 65534 65534
// 65534" and setuid(0) is refused to it; and with no uid 0 left the kernel
// clears its permitted, effective and ambient capabilities. The worker's
// code, from its first instruction, runs as the user; all it holds from
// before the switch are the fds the master gave it (the control socket, the
// listeners, the access log, the --root directory), deliberately.
//
// Supplementary groups are the user's, as initgroups(3) makes them for
// nginx's workers: the user's memberships in the group database, its gid
// being the primary one; never the master's. setgroups is always called, so
// root's groups (0, and whatever the service manager gave the master) do not
// reach a worker: for nobody, Groups: is empty. --group alone changes only
// the gid: the workers stay root.
//
// Two things Credential cannot ask for are set on the thread that forks the
// workers (spawn.go, confineThread), which every worker is a copy of:
//
//	no_new_privs   no execve in a worker gains a privilege: setuid-root and
//	               setgid binaries run with the worker's ids, file
//	               capabilities are ignored; it cannot be unset
//	               (/proc/PID/status: NoNewPrivs: 1)
//	inheritable    setuid does not clear it: a master started with one
//	and ambient    (systemd's AmbientCapabilities=, CapabilityInheritable=)
//	capabilities   would pass it on, and under SECBIT_NO_SETUID_FIXUP the
//	               ambient set would give the worker the capability back
//	               through its exec
//
// The spawner's thread is the master's main thread (see "Upgrade in
// place"), so with --user the master's main thread has no_new_privs too,
// and after an upgrade's execve the whole master does: it never needs to
// gain a privilege through an exec (root stays root, with the capabilities
// it had).
//
// So CapInh, CapPrm, CapEff and CapAmb of every thread of every worker are 0.
// The worker cannot do this itself: prctl and capset act on one thread, and
// with cgo linked in syscall.AllThreadsSyscall is refused; a thread the
// runtime started before the call would keep the old state. The bounding set
// is left as it is: with no_new_privs nothing can raise a capability through
// it. security_test.go checks all of it, for every thread, at start, after a
// HUP and after a crash, with a master started with root's groups and an
// inheritable and ambient capability.
//
// The master itself stays root. It needs to for what it does after the
// start: forking workers as another user (CAP_SETUID, CAP_SETGID) at every
// reload and crash; binding new sockets on TTIN, where a port below 1024
// needs CAP_NET_BIND_SERVICE and a socket joining a SO_REUSEPORT group must
// have the effective uid of the group's first; signalling workers of another
// uid; removing the pidfile and the admin socket from root's directories at
// exit. What it holds:
//
//	listening sockets   bound as root, kept across reloads and crashes
//	access log          opened O_APPEND as root; workers write it through
//	                    the inherited fd, never by path
//	--root directory    an O_PATH fd: workers reach the tree below it
//	                    whatever the permissions of the directories above
//	admin socket        a unix socket, mode 0600 (see below)
//	pidfile             written atomically, removed at exit
//	metrics listener    127.0.0.1:9464 unless --metrics-listen says otherwise
//	control sockets     one socketpair per worker
//
// It never touches client traffic: connections are accepted by, and never
// leave, the workers. What reaches it from outside is what it parses: a
// worker's control datagrams (at most wire.MaxMessage bytes, formats in
// wire), HTTP requests on the metrics address, and admin commands.
//
// The metrics address (/metrics, /healthz, /readyz) is loopback by default:
// the series say much about the server, and the fallback when the default
// port is taken is a free port of 127.0.0.1 too. The admin socket is created
// 0600, so only the master's user and root can connect(2) to it: the mode is
// set by fchmod(2) on the socket before bind(2), which creates the file with
// the socket inode's mode less the umask — there is no moment at which the
// file exists wider (a chmod after listening would leave one; a umask
// around the bind would change every file the master's other goroutines
// create meanwhile). Should the mode be widened anyway, each connection's
// SO_PEERCRED is checked before anything is read: a uid that is neither 0
// nor the master's gets {"error": "admin socket: refused: ..."}, and the
// refusal is logged with the peer's uid and pid. A command line is read to
// at most 4 KiB.
//
// # Files
//
//	master.go      events, New, Run: the goroutine that owns the table
//	supervise.go   starting workers, exits and restarts, backoff, hung
//	               workers, stopping
//	recycle.go     recycling by --max-requests and --max-worker-rss
//	reload.go      rolling reload, scaling, retiring a slot
//	upgrade.go     upgrade in place: check, hand over, exec, adopt, roll back
//	control.go     the control sockets: reading, READY and heartbeats
//	acceptor.go    handoff mode's acceptor: accept, place, send, close
//	handoff.go     handoff mode's glue: peers, the supervisor's hooks, series
//	listeners.go   the sockets per slot; activation.go: systemd's sockets
//	env.go         the seam: process start, signals, clock and timers, real
//	               in env_os.go (spawn.go forks), fake in supervise_test.go,
//	               whose table tests run this policy without a fork
//	config.go      Config, defaults and Validate
//	scale.go       the admin "scale N": an absolute count, answered when reached
//	http.go, admin.go, notify.go, pidfile.go   what operators talk to
package master
