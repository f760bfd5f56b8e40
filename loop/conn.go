package loop

import (
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Conn.Write once the connection is closing or closed.
var ErrClosed = errors.New("loop: connection closed")

// Conn is one accepted connection. It belongs to the loop that accepted it and
// may only be used on that loop's thread: from Handler callbacks, timers and
// tasks given to Loop.Post.
//
// A Conn with nothing pending owns no buffer: in and out are taken from the
// loop's free list when bytes must wait and returned as soon as they are gone.
type Conn struct {
	loop    *Loop
	ctx     any
	in      []byte // unconsumed input, nil when there is none
	out     []byte // output the kernel refused; out[outPos:] is still owed
	outPos  int
	files   []outFile // SendFile's queue: after out, before anything written later
	linger  *Timer    // bounds a lingering close
	active  int64     // loop.nanos() of the last read, for the idle sweep
	headAt  int64     // loop.nanos()+1 when BeginHead started the header clock, 0 when stopped
	stallAt int64     // loop.nanos()+1 of the last write progress while output is pending, 0 when none is
	fd      int32
	flags   connFlags
	reason  CloseReason
}

type connFlags uint16

const (
	fReadable  connFlags = 1 << iota // edge seen, EAGAIN not yet: the socket may hold input
	fRDHUP                           // EPOLLRDHUP/HUP/ERR seen: read until EOF or error, never stop at a short read
	fPaused                          // output above the high-water mark: reading stopped until it drains
	fInReady                         // on the loop's ready list
	fClosing                         // Close called: flush, then close
	fLinger                          // ... and close lingering
	fLingering                       // write side shut; input is read and discarded until EOF or timeout
	fClosed                          // fd closed, OnClose called
	fHeld                            // HoldInput: no reading, no delivery, until ResumeInput
	fRedeliver                       // ResumeInput with unconsumed input: deliver it again
	fQuiet                           // CloseWhenQuiet: on loop.quiet, closed once quiet
)

// Fd returns the connection's file descriptor. Use it for socket options; the
// loop owns it, so never close it or read from it.
func (c *Conn) Fd() int { return int(c.fd) }

// Loop returns the loop the connection belongs to.
func (c *Conn) Loop() *Loop { return c.loop }

// Context returns what SetContext stored.
func (c *Conn) Context() any { return c.ctx }

// SetContext stores per-connection protocol state.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Buffered returns how many output bytes wait for the kernel to accept them
// (queued files included).
func (c *Conn) Buffered() int { return len(c.out) - c.outPos }

// Closed reports whether Close was called or the connection is gone.
func (c *Conn) Closed() bool { return c.flags&(fClosing|fClosed) != 0 }

// RemoteAddr asks the kernel for the peer's address (getpeername(2)). It is
// not cached, so the loop spends nothing on it unless someone asks.
func (c *Conn) RemoteAddr() (net.Addr, error) {
	sa, err := unix.Getpeername(int(c.fd))
	if err != nil {
		return nil, os.NewSyscallError("getpeername", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}, nil
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}, nil
	}
	return nil, errors.New("loop: unknown peer address family")
}

// Write sends p. During OnData the bytes join the loop's coalescing buffer and
// leave in one write(2) when OnData returns; otherwise they are written at
// once. Whatever the kernel does not take is kept and flushed on EPOLLOUT, in
// order. Write never blocks and always takes all of p unless the connection is
// closing (ErrClosed).
func (c *Conn) Write(p []byte) (int, error) {
	if c.flags&(fClosing|fClosed) != 0 {
		return 0, ErrClosed
	}
	l := c.loop
	if l.cur == c {
		l.wbuf = append(l.wbuf, p...)
		return len(p), nil
	}
	l.send(c, p)
	return len(p), nil
}

// Close closes the connection once everything written has been flushed. The
// reason labels the close in the metrics and reaches OnClose.
func (c *Conn) Close(reason CloseReason) {
	c.requestClose(reason, false)
}

// CloseLingering is Close for a connection whose peer may still be sending
// (a rejected request with a body, say): after the flush it shuts down the
// write side and reads and discards input until the peer closes or
// Config.LingerTimeout passes. Closing at once would make the kernel answer
// the unread bytes with a reset, which can destroy the response before the
// peer reads it.
func (c *Conn) CloseLingering(reason CloseReason) {
	c.requestClose(reason, true)
}

func (c *Conn) requestClose(reason CloseReason, linger bool) {
	if c.flags&(fClosing|fClosed) != 0 {
		return
	}
	if reason >= numReasons {
		reason = ReasonLocal // an unknown reason must not index past Stats.Closed
	}
	c.flags |= fClosing
	if linger {
		c.flags |= fLinger
	}
	c.reason = reason
	if c.loop.cur != c { // inside OnData the loop finishes the close after flushing
		c.loop.finishClose(c)
	}
}

func (c *Conn) pending() int {
	n := len(c.out) - c.outPos
	for i := range c.files {
		f := &c.files[i]
		n += int(f.end-f.off) + len(f.after)
	}
	return n
}

// pendingBytes is the output held in memory before any queued file.
func (c *Conn) pendingBytes() int { return len(c.out) - c.outPos }

// idleFor reports whether the connection has had no input for d.
func (c *Conn) idleFor(now int64, d time.Duration) bool {
	return now-c.active >= int64(d)
}

// BeginHead starts the connection's header clock, unless it is running:
// the handler holds the start of a request head (or frame) that has not
// completed. If EndHead is not called within Config.HeaderTimeout, the
// connection is closed (ReasonHeaderTimeout), after the handler's
// HeadTimeouter, if any, has answered it. Call it from OnData when it
// leaves an incomplete head unconsumed; the clock runs from that call,
// which is when the head's first bytes were read. Loop goroutine only.
func (c *Conn) BeginHead() {
	if c.headAt == 0 {
		c.headAt = c.loop.now + 1
	}
}

// EndHead stops the header clock: the head has completed. A body that
// follows is bounded by the idle timeout between reads, not by this one.
func (c *Conn) EndHead() { c.headAt = 0 }

// CloseWhenQuiet closes the connection, with reason, once it has been
// quiet (no input) for Config.DrainQuiet, checked every DrainQuiet/4. Input
// that arrives meanwhile reaches the handler as usual, which should answer
// it and close. A draining protocol uses it for idle keep-alive
// connections: closing one at once would fail a request already on its
// way, which the client cannot tell from a server that died under it.
func (c *Conn) CloseWhenQuiet(reason CloseReason) {
	if c.flags&(fClosing|fClosed|fQuiet) != 0 {
		return
	}
	c.flags |= fQuiet
	c.reason = reason
	l := c.loop
	l.quiet = append(l.quiet, c)
	if len(l.quiet) == 1 {
		l.AfterFunc(l.cfg.DrainQuiet/4, l.closeQuiet)
	}
}

// OutputRoom returns how many more bytes of output the connection may owe
// before it passes the loop's high-water mark (Config.HighWater), counting
// what OnData has written so far; at most 0. A protocol answering
// pipelined requests checks its answers against it and stops early (Yield)
// rather than build one huge burst of output for a client that may not be
// reading. Loop goroutine only.
func (c *Conn) OutputRoom() int {
	n := c.pending()
	if c.loop.cur == c {
		n += len(c.loop.wbuf)
	}
	return max(c.loop.cfg.HighWater-n, 0)
}

// Yield, from OnData, says that the input left unconsumed holds work the
// handler put off (requests it did not serve yet because its output is at
// OutputRoom): the loop delivers it again, even if nothing new arrives, on
// its next turn, or once the output has drained below the low-water mark
// if it is past the high-water mark.
func (c *Conn) Yield() { c.flags |= fRedeliver }

// HoldInput stops reading from the connection and delivering its input, from
// OnData or any other handler call on the loop's goroutine, until
// ResumeInput. What the client sends meanwhile waits in the kernel (TCP
// flow control then slows the client), and unconsumed input stays buffered.
// A protocol uses it to bound the work it has in flight.
func (c *Conn) HoldInput() { c.flags |= fHeld }

// ResumeInput undoes HoldInput (loop goroutine only). On the next turn the
// loop delivers the input left unconsumed, even if nothing new arrived, and
// reads the socket again.
func (c *Conn) ResumeInput() {
	if c.flags&fHeld == 0 || c.flags&fClosed != 0 {
		return
	}
	c.flags &^= fHeld
	if len(c.in) > 0 {
		c.flags |= fRedeliver
	}
	if c.flags&(fReadable|fRedeliver) != 0 {
		c.loop.markReady(c)
	}
}

// Held reports whether HoldInput is in force.
func (c *Conn) Held() bool { return c.flags&fHeld != 0 }
