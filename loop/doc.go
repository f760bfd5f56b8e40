// Package loop is a Reactor: one epoll set served by one goroutine (the loop's
// "thread" in these docs, though it is not locked to an OS thread). Each
// prefork worker process runs exactly one, with GOMAXPROCS=1 unless told
// otherwise; nothing in it is shared with another loop or another process, so
// it needs no locks on its hot path. Every system call goes through
// golang.org/x/sys/unix.
//
// # What is registered, and how
//
//	fd                     events                                   why
//	listening socket       EPOLLIN, level-triggered                 accept up to Config.AcceptBudget per wake-up;
//	                       (+EPOLLEXCLUSIVE when shared)            what is left keeps the fd readable for the next turn
//	connection             EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET      registered once at accept, never modified:
//	                                                                no epoll_ctl per request
//	eventfd                EPOLLIN, level-triggered                 Post/Shutdown/Stop from other goroutines
//	watched fds (Watch)    EPOLLIN|EPOLLRDHUP, level-triggered      the worker's control socket
//
// The epoll_event's data word carries the fd and a tag (connection, listener,
// eventfd, watch), so dispatch is a switch; connections are found in a slice
// indexed by fd. All fds are CLOEXEC and non-blocking (accept4 with
// SOCK_NONBLOCK|SOCK_CLOEXEC, epoll_create1(EPOLL_CLOEXEC), eventfd with
// EFD_NONBLOCK|EFD_CLOEXEC).
//
// # One turn
//
//  1. epoll_wait, with a timeout of 0 if connections wait on the ready list,
//     else until the earliest timer (idle sweep, heartbeat tick, linger
//     deadline, user timers), else forever.
//  2. Dispatch every event: accept, read/flush connections, run posted tasks,
//     call watch callbacks.
//  3. Serve the ready list: connections whose read budget ran out last turn.
//  4. Run due timers.
//  5. Every 4 ms, yield to the Go scheduler (runtime.Gosched): other
//     goroutines get their turn, and the runtime never has to preempt the
//     loop with a signal.
//
// The wait in step 1 is made without the Go scheduler's syscall bookkeeping
// (RawSyscall) while the loop is busy, and bounded to 10 ms; a loop that went
// quiet blocks through the scheduler, so an idle worker costs nothing.
//
// # The life of a connection
//
// accept4 → TCP_NODELAY → epoll_ctl(ADD) → Handler.OnOpen. On each readable
// edge the loop reads until EAGAIN into the loop's one read buffer, and hands
// the bytes to Handler.OnData, which returns how many it consumed. Reading
// stops early when:
//   - a read returns less than the buffer: the socket is drained, and an
//     edge-triggered registration reports any later arrival as a new event,
//     so the read that would return EAGAIN is skipped (unless EPOLLRDHUP,
//     EPOLLHUP or EPOLLERR was seen: then it reads on to EOF or the error);
//   - the per-connection read budget is spent: the connection goes on the
//     ready list and is served next turn, so one fast sender cannot starve
//     the rest;
//   - pending output passes Config.HighWater (backpressure): reading stops
//     until EPOLLOUT has flushed it down to Config.LowWater;
//   - the handler called Conn.Yield (it put off input because its output is
//     at Conn.OutputRoom): the input is delivered again next turn, or once
//     the output has drained, before anything more is read;
//   - the handler closed the connection.
//
// Writes go straight to the socket. Writes made during OnData are appended to
// the loop's coalescing buffer and leave in one write(2) when OnData returns:
// pipelined requests in one read get one write. Only the tail the kernel does
// not take is copied to the connection's own output buffer and flushed on
// EPOLLOUT, in order.
//
// A connection ends by:
//   - Conn.Close: flush, then close(2);
//   - Conn.CloseLingering: flush, shutdown(SHUT_WR), then read and discard
//     until EOF or Config.LingerTimeout, then close — so a peer that sent more
//     than the handler read gets the response rather than a reset;
//   - read returning 0 (peer half-close): what is owed is flushed, then close;
//   - a socket error (ECONNRESET, EPIPE): close at once;
//   - the sweep of timeouts, once a second or a quarter of the shortest:
//     Config.IdleTimeout (no input), Config.HeaderTimeout (a head the handler
//     marked with Conn.BeginHead not ended by Conn.EndHead: HeadTimeouter
//     answers it first), Config.WriteTimeout (pending output without
//     progress: closed at once);
//   - Conn.CloseWhenQuiet: closed once no input has come for
//     Config.DrainQuiet;
//   - the shutdown deadline, Stop.
//
// Config.MaxConns bounds the open connections: at the limit the listeners
// leave the epoll set until one closes, so new connections wait in the
// kernel's backlog rather than being accepted and reset.
//
// Handler.OnClose is called exactly once, after close(2), with the reason.
// Closing the fd removes it from the epoll set, because connection fds are
// never duplicated: they never leave the worker that accepted them.
//
// # Who owns which buffer
//
//   - Loop.rbuf (Config.ReadBufferSize, 64 KiB): one per loop, shared by all
//     connections. The bytes in it are valid only during OnData; the loop
//     copies what OnData did not consume into the connection before the next
//     read.
//   - Loop.wbuf: one per loop; writes made during OnData collect here and are
//     written when OnData returns.
//   - Conn.in: the connection's unconsumed input (a partial request). Nil when
//     everything was consumed.
//   - Conn.out: output the kernel did not take. Nil once flushed.
//
// Conn.in and Conn.out come from a small free list of the loop and go back to
// it as soon as they are empty, so a connection with no pending I/O owns no
// buffer: an idle keep-alive connection costs its Conn struct, its protocol
// state and its slot in the fd table.
//
// # Stopping
//
// Shutdown(grace): accept what is already queued, close the listeners, read
// any input already waiting, call Drainer.OnDrain for every connection (HTTP
// marks every connection to end with "Connection: close" after the request in
// flight or the next one, and gives idle ones to Conn.CloseWhenQuiet), serve the rest until they close or grace passes,
// then close them. Run returns when no connection is left. Stop closes
// everything at once.
//
// # Errors
//
// EINTR is retried in one place per call (sys.go), except epoll_wait's: Run
// yields to the Go scheduler, then waits again. Each other errno decision is
// commented where it is made: EAGAIN ends a read or write burst; ECONNABORTED
// and the network errors accept(2) passes through are retried; EMFILE/ENFILE
// shed one connection using a spare fd (without it the level-triggered
// listener would spin the loop); ENOBUFS/ENOMEM stop accepting for the turn;
// EINVAL means the listener stopped listening and is dropped. close(2) is never
// retried. Errors that leave the package are wrapped with the call's name
// (os.NewSyscallError).
package loop
