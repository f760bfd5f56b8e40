package loop

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// connEvent handles one epoll event of a connection.
func (l *Loop) connEvent(c *Conn, ev uint32) {
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The peer is gone or half-gone: read to EOF or the error, and let
		// the read report it, after delivering what came before it.
		c.flags |= fRDHUP | fReadable
	}
	if ev&unix.EPOLLOUT != 0 && c.pending() > 0 {
		l.flush(c)
		if c.flags&fClosed != 0 {
			return
		}
	}
	if ev&unix.EPOLLIN != 0 {
		c.flags |= fReadable
	}
	if c.flags&fReadable != 0 {
		l.readConn(c)
	}
}

// readConn reads until EAGAIN, the read budget, backpressure or a close.
func (l *Loop) readConn(c *Conn) {
	if c.flags&(fClosed|fPaused|fHeld) != 0 || c.flags&(fClosing|fLingering) == fClosing {
		return // paused: resumed by flush; held: by ResumeInput; closing: input no longer matters
	}
	budget := l.cfg.ReadBudget
	for {
		n, err := readFD(int(c.fd), l.rbuf)
		if err != nil {
			if err == unix.EAGAIN {
				c.flags &^= fReadable
				return
			}
			// ECONNRESET, ETIMEDOUT...: the connection is dead; what we owe
			// it can no longer be delivered.
			l.closeNow(c, ReasonError)
			return
		}
		if n == 0 {
			c.flags &^= fReadable
			l.peerClosed(c)
			return
		}
		l.stats.ReadBytes += uint64(n)
		c.active = l.now
		if c.flags&fLingering == 0 {
			l.deliver(c, l.rbuf[:n])
			if c.flags&(fClosing|fClosed|fPaused|fHeld|fRedeliver) != 0 && c.flags&fLingering == 0 {
				// Yield (fRedeliver): the handler put input off; reading
				// more would only grow it. The socket may hold more: the
				// redelivery reads on.
				return
			}
		}
		if n < len(l.rbuf) && c.flags&fRDHUP == 0 {
			// A short read emptied the socket. Edge-triggered epoll reports
			// any later arrival as a new event, so the read that would only
			// return EAGAIN is skipped.
			c.flags &^= fReadable
			return
		}
		if budget -= n; budget <= 0 {
			l.markReady(c)
			return
		}
	}
}

// deliver hands input to the handler and keeps what it does not consume.
func (l *Loop) deliver(c *Conn, data []byte) {
	in := data
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		in = c.in
	}
	l.cur = c
	consumed := l.h.OnData(c, in)
	l.cur = nil
	if consumed < 0 || consumed > len(in) {
		panic(fmt.Sprintf("loop: OnData consumed %d of %d bytes", consumed, len(in)))
	}
	if len(l.wbuf) > 0 {
		l.send(c, l.wbuf)
		if cap(l.wbuf) > 4<<20 { // one huge response must not pin memory forever
			l.wbuf = make([]byte, 0, 16<<10)
		} else {
			l.wbuf = l.wbuf[:0]
		}
	}
	if c.flags&fClosed != 0 {
		return
	}
	rest := in[consumed:]
	switch {
	case len(rest) == 0:
		l.putBuf(c.in)
		c.in = nil
	case len(c.in) > 0: // in is c.in: slide the rest to the front
		c.in = c.in[:copy(c.in, rest)]
	default:
		c.in = append(l.getBuf(len(rest)), rest...)
	}
	if len(c.in) > l.cfg.MaxInput {
		c.requestClose(ReasonOverflow, true)
	}
	if c.flags&fClosing != 0 {
		l.finishClose(c)
		return
	}
	if c.pending() > l.cfg.HighWater {
		c.flags |= fPaused
		l.stats.Paused++
	}
	if c.flags&fRedeliver != 0 {
		if len(c.in) == 0 {
			c.flags &^= fRedeliver // Yield with nothing left: nothing to do
		} else if c.flags&(fPaused|fHeld) == 0 {
			l.markReady(c)
		}
	}
}

// send writes p through to the socket, keeping the unwritten tail.
func (l *Loop) send(c *Conn, p []byte) {
	if len(c.files) > 0 { // a file is ahead: these bytes go after it
		last := &c.files[len(c.files)-1]
		last.after = append(last.after, p...)
		return
	}
	if c.pending() > 0 { // earlier bytes wait for EPOLLOUT; keep the order
		c.out = append(c.out, p...)
		return
	}
	n, err := writeFD(int(c.fd), p)
	if err != nil {
		if err != unix.EAGAIN {
			// EPIPE, ECONNRESET: the peer is gone.
			l.closeNow(c, ReasonError)
			return
		}
		n = 0
	}
	l.stats.WrittenBytes += uint64(n)
	if n < len(p) {
		if c.out == nil {
			c.out = l.getBuf(len(p) - n)
		}
		if c.stallAt == 0 { // the kernel pushed back: the write clock starts
			c.stallAt = l.now + 1
		}
		c.out = append(c.out, p[n:]...)
	}
}

// flush writes pending output on EPOLLOUT, and keeps the write-timeout
// clock: it runs while output is pending and restarts on progress.
func (l *Loop) flush(c *Conn) {
	written := l.stats.WrittenBytes
	l.flushOutput(c)
	switch {
	case c.flags&fClosed != 0:
	case c.pending() == 0:
		c.stallAt = 0
	case l.stats.WrittenBytes != written || c.stallAt == 0:
		c.stallAt = l.now + 1
	}
}

func (l *Loop) flushOutput(c *Conn) {
	l.flushBytes(c)
	if c.flags&fClosed != 0 {
		return
	}
	if c.pendingBytes() == 0 && len(c.files) > 0 {
		// Files (sendfile) and the bytes behind them, until EAGAIN.
		if l.flushFiles(c); c.flags&fClosed != 0 {
			return
		}
	}
	if c.pending() == 0 && c.flags&fClosing != 0 {
		l.finishClose(c)
		return
	}
	if c.flags&fPaused != 0 && c.pending() <= l.cfg.LowWater {
		c.flags &^= fPaused
		if c.flags&(fReadable|fRedeliver) != 0 {
			l.markReady(c)
		}
	}
}

// flushBytes writes the pending bytes that lead the output.
func (l *Loop) flushBytes(c *Conn) {
	for c.pendingBytes() > 0 {
		n, err := writeFD(int(c.fd), c.out[c.outPos:])
		if err != nil {
			if err == unix.EAGAIN {
				break
			}
			l.closeNow(c, ReasonError)
			return
		}
		l.stats.WrittenBytes += uint64(n)
		c.outPos += n
	}
	if c.pendingBytes() == 0 {
		l.putBuf(c.out)
		c.out, c.outPos = nil, 0
	} else if c.outPos > len(c.out)/2 && c.outPos > 64<<10 {
		// Slide the tail down so a long-lived slow reader does not keep
		// a mostly-sent buffer growing at the back.
		c.out = c.out[:copy(c.out, c.out[c.outPos:])]
		c.outPos = 0
	}
}

// peerClosed handles read returning 0: the peer will send no more.
func (l *Loop) peerClosed(c *Conn) {
	switch {
	case c.flags&fLingering != 0:
		l.closeNow(c, c.reason)
	case c.flags&fClosing != 0:
		// Already closing: finishClose runs when the output drains.
	case c.pending() > 0:
		// Half-close: the peer may still read what we owe it.
		c.flags |= fClosing
		c.reason = ReasonPeer
	default:
		l.closeNow(c, ReasonPeer)
	}
}

// finishClose closes a connection whose Close was requested, once its output
// has drained: at once, or lingering.
func (l *Loop) finishClose(c *Conn) {
	if c.flags&fClosed != 0 || c.pending() > 0 {
		return // flush calls again when the output has drained
	}
	if c.flags&fLinger == 0 || c.flags&fLingering != 0 {
		l.closeNow(c, c.reason)
		return
	}
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil {
		l.closeNow(c, c.reason) // ENOTCONN: the peer is already gone
		return
	}
	c.flags |= fLingering
	l.putBuf(c.in)
	c.in = nil
	c.linger = l.AfterFunc(l.cfg.LingerTimeout, func() { l.closeNow(c, c.reason) })
	if c.flags&fReadable != 0 {
		l.markReady(c)
	}
}

// closeNow closes the fd and tells the handler. Closing the fd removes it
// from the epoll set: connection fds are never duplicated, so this is the
// last reference to the open file.
func (l *Loop) closeNow(c *Conn, reason CloseReason) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	c.reason = reason
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if err := closeFD(int(c.fd)); err != nil {
		l.log.Warn("close connection", "err", err)
	}
	l.conns[c.fd] = nil
	l.nconns--
	if l.paused && l.nconns < l.cfg.MaxConns && !l.draining {
		l.resumeAccept()
	}
	l.stats.Closed[reason]++
	l.putBuf(c.in)
	l.putBuf(c.out)
	c.in, c.out, c.outPos = nil, nil, 0
	c.closeFiles()
	l.h.OnClose(c, reason)
}

func (l *Loop) markReady(c *Conn) {
	if c.flags&fInReady == 0 {
		c.flags |= fInReady
		l.ready = append(l.ready, c)
	}
}

// runReady gives connections cut short by their read budget another turn.
func (l *Loop) runReady() {
	if len(l.ready) == 0 {
		return
	}
	l.ready, l.readyNext = l.readyNext[:0], l.ready
	for i, c := range l.readyNext {
		c.flags &^= fInReady
		l.readyNext[i] = nil
		if c.flags&fRedeliver != 0 && c.flags&(fPaused|fHeld) == 0 {
			// ResumeInput or Yield: what was left unconsumed.
			c.flags &^= fRedeliver
			if c.flags&(fClosed|fClosing) == 0 && len(c.in) > 0 {
				l.deliver(c, nil)
			}
		}
		if c.flags&fReadable != 0 {
			l.readConn(c)
		}
	}
}
