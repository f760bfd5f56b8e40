package loop

// Post runs fn on the loop's thread at the start of its next turn, waking it
// through the eventfd. It may be called from any goroutine.
// Tasks posted after Run has returned are dropped.
func (l *Loop) Post(fn func()) {
	l.tasksMu.Lock()
	defer l.tasksMu.Unlock()
	if l.wakeClosed {
		return
	}
	l.tasks = append(l.tasks, fn)
	if !l.woken { // else a wake-up is already on its way
		l.woken = true
		// EAGAIN means the counter is saturated: the loop is signalled anyway.
		_, _ = writeFD(l.wakefd, wakeValue[:])
	}
}

var wakeValue = [8]byte{1} // eventfd counter increment, native (little) endian

func (l *Loop) runTasks() {
	var buf [8]byte
	// EAGAIN: the counter was already read by an earlier turn; nothing lost.
	_, _ = readFD(l.wakefd, buf[:])
	l.tasksMu.Lock()
	l.woken = false // a Post after this point writes the eventfd again
	l.taskRun, l.tasks = l.tasks, l.taskRun[:0]
	l.tasksMu.Unlock()
	for i, fn := range l.taskRun {
		fn()
		l.taskRun[i] = nil
	}
}
