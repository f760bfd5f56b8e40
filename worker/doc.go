// Package worker is the worker role: the process `prefork serve` re-executes
// its own binary into, once per worker slot (argv "prefork worker slot=K").
//
// # Start
//
// The worker reads its wire.Spec from PREFORK_WORKER_SPEC and removes it from
// the environment (app does this, then calls Run). Run checks that fd 3 is a
// SOCK_SEQPACKET socket and fd 4.. are listening TCP sockets, as
// wire.FDControl and wire.FDFirstListener say, and sets FD_CLOEXEC on them,
// so a program a handler starts inherits nothing. The master has already
// switched the process to --user/--group between fork and exec, so no worker
// code runs as root.
//
// It then sets GOMAXPROCS=1 (unless GOMAXPROCS is in the environment),
// pins the process to Spec.CPU under --cpu-affinity, builds the protocol's
// handler from the Settings and one loop.Loop, and puts the listeners and the
// control socket in the loop's epoll set. The first loop turn sends READY.
//
// # Serving
//
// Everything happens on the loop's goroutine: connections, the control
// socket (STOP, QUIT, RETIRE, METRICS, FDS), the heartbeat (HB <conns>
// <requests>, sent from the loop's tick every Spec.Heartbeat, so a stuck
// handler shows up at the master as silence) and the metrics gather (the
// loop's counters are plain integers read there without locks, encoded into
// one datagram).
//
// The heartbeat's request count is what the master's --max-requests is
// checked against: the protocol's own count when its handler is a Requester
// (HTTP responses, calc frames, echo reads: the count of
// prefork_requests_total), otherwise the connections the loop accepted (or
// was handed), since every connection carries at least one request.
//
// # Handoff mode
//
// With Spec.Handoff the worker inherits no listener: the master accepts, and
// each connection arrives on the control socket as an FDS <kinds> message
// with the fds in SCM_RIGHTS (wire/handoff.go), up to 253 per message. The
// worker reads its control socket with recvmsg(MSG_CMSG_CLOEXEC), in every
// mode, so a passed fd is close-on-exec from the moment it exists here, and
// adds each fd to its loop with loop.AddConn: non-blocking, TCP_NODELAY for
// a TCP one, the same OnOpen, counters, idle timeout and drain as an
// accepted connection. A message the kernel truncated (MSG_CTRUNC: the
// worker is out of fds) or whose fd count does not match its kinds has all
// its fds closed: which of them are which cannot be known. So have the fds
// of a message that is not FDS, and of any FDS outside handoff mode.
//
// The worker tells the master how many of the connections it was handed are
// no longer open, GONE <n> (cumulative: received minus open), within 10 ms
// of each FDS message and with every heartbeat; the master places new
// connections by these counts (master/doc.go). Per worker:
// prefork_handoff_received_total and prefork_handoff_refused_total (fds it
// closed at once).
//
// # Stopping
//
//	STOP or SIGTERM  stop accepting, let connections finish within
//	                 Settings.GracefulTimeout, exit 0
//	RETIRE           keep accepting for a moment (the master has steered new
//	                 connections to other slots; handshakes under way still
//	                 land here), then as STOP: the slot's queue is emptied
//	                 before the master closes its socket
//	QUIT, or EOF on  close everything at once and exit 0: a worker never
//	the control      outlives its master (Pdeathsig=SIGKILL covers a master
//	socket           that is killed)
//
// SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU and SIGPIPE are ignored: a
// terminal's ^C reaches the whole process group, and the master decides.
//
// PREFORK_WORKER_CPUPROFILE=DIR writes a CPU profile of each worker to
// DIR/worker-SLOT-PID.pprof, stopped at a graceful exit (scripts/bench uses
// it).
package worker
