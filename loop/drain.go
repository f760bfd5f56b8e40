package loop

import (
	"time"
)

// Shutdown starts a graceful stop from any goroutine: listeners are removed and
// closed, Drainer handlers are told, open connections are served until they
// close, and whatever is still open after grace is closed (ReasonShutdown).
// Run returns when the last connection has gone.
func (l *Loop) Shutdown(grace time.Duration) {
	l.Post(func() { l.beginDrain(grace) })
}

// Stop closes everything at once from any goroutine; Run returns after it.
func (l *Loop) Stop() {
	l.Post(l.stopNow)
}

func (l *Loop) beginDrain(grace time.Duration) {
	if l.draining || l.done {
		return
	}
	l.draining = true
	// Take what is already queued before closing: a connection the kernel
	// completed is a client waiting, and closing the listener would reset it.
	for _, ln := range append([]listener(nil), l.listeners...) { // accept may drop one
		l.accept(ln.fd, 1<<20)
	}
	l.closeListeners()
	d, _ := l.h.(Drainer)
	for _, c := range l.conns {
		if c == nil || c.flags&(fClosing|fClosed) != 0 {
			continue
		}
		// Input may have arrived that this turn has not read yet (its event
		// is still queued in epoll): read it first, so the handler does not
		// take a connection with a request waiting for an idle one.
		c.flags |= fReadable
		l.readConn(c)
		if d != nil && c.flags&(fClosing|fClosed) == 0 {
			d.OnDrain(c)
		}
	}
	l.AfterFunc(grace, func() { l.closeConns(ReasonShutdown) })
}

// closeQuiet closes the connections given to CloseWhenQuiet that have been
// quiet for DrainQuiet, and checks the others again later.
func (l *Loop) closeQuiet() {
	keep := l.quiet[:0]
	for _, c := range l.quiet {
		if c.flags&(fClosing|fClosed) != 0 {
			continue // the protocol closed it (it answered a last request)
		}
		if !c.idleFor(l.now, l.cfg.DrainQuiet) || len(c.in) > 0 || c.flags&fHeld != 0 {
			keep = append(keep, c)
			continue
		}
		// Input may have arrived since the connection's last event was
		// handled: read once more before closing, and serve what came.
		c.flags |= fReadable
		if l.readConn(c); c.flags&(fClosing|fClosed) == 0 && c.idleFor(l.now, l.cfg.DrainQuiet) {
			c.Close(c.reason)
		} else if c.flags&(fClosing|fClosed) == 0 {
			keep = append(keep, c)
		}
	}
	clear(l.quiet[len(keep):])
	l.quiet = keep
	if len(l.quiet) > 0 {
		l.AfterFunc(l.cfg.DrainQuiet/4, l.closeQuiet)
	}
}

func (l *Loop) stopNow() {
	l.closeListeners()
	l.closeConns(ReasonShutdown)
	l.done = true
}

func (l *Loop) removeListener(fd int) {
	for i, ln := range l.listeners {
		if ln.fd == fd {
			_ = closeFD(fd)
			l.listeners = append(l.listeners[:i], l.listeners[i+1:]...)
			return
		}
	}
}

func (l *Loop) closeListeners() {
	for _, ln := range l.listeners {
		// Closing our copy also removes it from the epoll set; in shared mode
		// the other workers' copies, and the master's, stay open.
		_ = closeFD(ln.fd)
	}
	l.listeners = nil
}

func (l *Loop) closeConns(reason CloseReason) {
	for _, c := range l.conns {
		if c != nil {
			l.closeNow(c, reason)
		}
	}
}

func (l *Loop) closeAll() {
	l.closeListeners()
	l.closeConns(ReasonShutdown)
	if s, ok := l.h.(Stopper); ok {
		s.OnStop()
	}
	l.tasksMu.Lock()
	l.wakeClosed = true
	if l.wakefd >= 0 {
		_ = closeFD(l.wakefd)
		l.wakefd = -1
	}
	l.tasksMu.Unlock()
	l.closeEpoll()
	for _, fd := range []*int{&l.spare} {
		if *fd >= 0 {
			_ = closeFD(*fd)
			*fd = -1
		}
	}
}
