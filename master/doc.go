// Package master is prefork's supervisor: it owns the listening sockets and
// the worker processes.
//
// # Roles
//
// The same binary runs in two roles. `prefork serve` is the master; it starts
// each worker by re-executing /proc/self/exe with the hidden `worker` command
// (argv "prefork worker slot=K", so ps shows which is which). A worker reads
// its settings from PREFORK_WORKER_SPEC (JSON: slot, generation, protocol,
// listener addresses, timeouts, log settings), removes it from its
// environment, builds the protocol handler and runs one epoll loop
// (package loop). A program that registers its own protocol with app.Main
// gets both roles the same way.
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
// every worker; in reuseport mode they are slot K's sockets only. Connection
// fds never leave the worker that accepted them.
//
// The environment variables systemd sets for the master alone (NOTIFY_SOCKET,
// LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, WATCHDOG_*) are removed from the
// workers' environment.
//
// # Control messages
//
// One datagram per message (no framing; EOF means the other side died):
//
//	worker → master   READY (listeners in the epoll set), HB (heartbeat from the loop thread)
//	master → worker   STOP (graceful), QUIT (fast), RETIRE (accept what is queued, then STOP)
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
// # Signals
//
//	TERM      graceful stop: STOP to every worker, the master's sockets closed;
//	          workers finish requests in flight, close idle keep-alive
//	          connections, and are killed if still running after
//	          --graceful-timeout + 5 s; exit 0 when all are gone
//	INT, QUIT fast stop: QUIT to every worker (SIGKILL after 5 s); exit 0
//	HUP       rolling reload, slot by slot: start generation g+1, wait for its
//	          READY, then STOP generation g. A replacement that dies before
//	          READY leaves the old worker in place.
//	TTIN      one more slot (in reuseport mode with new sockets joining the
//	          groups)
//	TTOU      retire the highest slot: steer new connections away from its
//	          sockets (SO_ATTACH_REUSEPORT_CBPF), RETIRE its worker (it accepts
//	          what is queued and drains), close the sockets when it has exited
//	CHLD      reap; an unexpected exit is a crash
//
// # Supervision
//
// A crashed worker is replaced at once; a slot that keeps crashing backs off
// 100 ms, 200 ms, 400 ms … up to 30 s, and the count resets once a worker has
// run for 10 s. A worker that sends no heartbeat for --worker-timeout (its
// loop is stuck: heartbeats come from the loop's own timer) gets SIGABRT, for
// a goroutine dump, and SIGKILL 3 s later; its exit is then a crash like any
// other. Workers never outlive the master: Pdeathsig=SIGKILL covers a master
// that is killed, EOF on the control socket a master that exits; a master
// running as PID 1 reaps every child, not only its workers.
package master
