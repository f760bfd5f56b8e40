package loop

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// outFile is a file queued for a connection's output: bytes [off, end) of
// fd, then the bytes written after it was queued.
type outFile struct {
	fd       int
	off, end int64
	own      bool   // close fd once sent or moot
	after    []byte // written after the file: they go once it has
}

// ErrFileShrunk is why a connection closes when a file queued with SendFile
// ends before the bytes promised (it was truncated meanwhile): the response
// length sent can no longer be honoured.
var ErrFileShrunk = errors.New("loop: file shorter than the bytes to send")

// SendFile sends n bytes of the file fd from offset off after everything
// written so far, with sendfile(2): the data goes from the page cache to the
// socket without passing through the process. What the socket does not take
// now is sent on EPOLLOUT; bytes written later follow it, in order; the
// pending file counts toward the high-water mark, so a slow reader of a large
// file costs no memory and stops the reading of its connection. With own,
// the loop closes fd once the bytes are sent or the connection closes.
// Loop goroutine only. ErrClosed when the connection is closing (fd is then
// closed if own).
func (c *Conn) SendFile(fd int, off, n int64, own bool) error {
	if c.flags&(fClosing|fClosed) != 0 {
		if own {
			_ = closeFD(fd)
		}
		return ErrClosed
	}
	l := c.loop
	if l.cur == c && len(l.wbuf) > 0 {
		// What OnData wrote so far goes first, with MSG_MORE when nothing
		// is ahead of it: the kernel holds a short head (an HTTP response's)
		// to leave in the same segment as the file's first bytes, as nginx's
		// TCP_NOPUSH does, instead of a small packet of its own.
		if c.pending() == 0 && n > 0 {
			k, err := sendMore(int(c.fd), l.wbuf)
			if err != nil && err != unix.EAGAIN {
				l.wbuf = l.wbuf[:0]
				l.closeNow(c, ReasonError)
				if own {
					_ = closeFD(fd)
				}
				return ErrClosed
			}
			l.stats.WrittenBytes += uint64(max(k, 0))
			l.wbuf = l.wbuf[max(k, 0):]
		}
		if len(l.wbuf) > 0 {
			l.send(c, l.wbuf)
		}
		l.wbuf = l.wbuf[:0]
		if c.flags&fClosed != 0 {
			if own {
				_ = closeFD(fd)
			}
			return ErrClosed
		}
	}
	if n <= 0 {
		if own {
			_ = closeFD(fd)
		}
		return nil
	}
	c.files = append(c.files, outFile{fd: fd, off: off, end: off + n, own: own})
	l.stats.FilesSent++
	if c.pendingBytes() == 0 && len(c.files) == 1 {
		l.flush(c) // write through: nothing is ahead of it
	}
	return nil
}

// flushFiles sends the queued files (and the bytes behind each) while the
// socket takes them. It reports whether all went.
func (l *Loop) flushFiles(c *Conn) bool {
	for len(c.files) > 0 {
		f := &c.files[0]
		for f.off < f.end {
			off := f.off
			n, err := unix.Sendfile(int(c.fd), f.fd, &off, int(min(f.end-f.off, 1<<30)))
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false // EPOLLOUT resumes it
			}
			if err != nil || n == 0 {
				// EPIPE, ECONNRESET: the peer is gone. 0: the file
				// shrank; the length the head promised cannot be kept.
				if err == nil {
					err = ErrFileShrunk
				}
				l.log.Debug("sendfile", "err", os.NewSyscallError("sendfile", err))
				l.closeNow(c, ReasonError)
				return false
			}
			f.off = off
			l.stats.WrittenBytes += uint64(n)
		}
		if f.own {
			_ = closeFD(f.fd)
		}
		after := f.after
		c.files[0] = outFile{}
		c.files = c.files[1:]
		if len(c.files) == 0 {
			c.files = nil
		}
		if len(after) > 0 {
			// The bytes behind the file now lead: write them, or keep them.
			n, err := writeFD(int(c.fd), after)
			if err != nil && err != unix.EAGAIN {
				l.closeNow(c, ReasonError)
				return false
			}
			if n < 0 {
				n = 0
			}
			l.stats.WrittenBytes += uint64(n)
			if n < len(after) {
				// The rest leads the output now, ahead of any next file.
				c.out, c.outPos = append(l.getBuf(len(after)-n), after[n:]...), 0
				return false
			}
		}
	}
	return true
}

// closeFiles closes the files a closed connection still owed.
func (c *Conn) closeFiles() {
	for _, f := range c.files {
		if f.own {
			_ = closeFD(f.fd)
		}
	}
	c.files = nil
}
