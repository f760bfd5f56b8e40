package loop

import "time"

// Timer is a callback scheduled on a loop. Timers live in a binary min-heap
// that the loop checks once per turn; epoll_wait sleeps no longer than the
// earliest deadline. A Timer is only touched on the loop's thread.
type Timer struct {
	loop  *Loop
	when  int64 // nanoseconds since loop.base
	fn    func()
	index int // position in loop.timers, -1 when not scheduled
}

// AfterFunc schedules fn to run on the loop's thread after d. It must be
// called on the loop's thread (from a Handler, a Post'ed task or another
// timer).
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer {
	t := &Timer{loop: l, fn: fn, index: -1}
	t.Reset(d)
	return t
}

// Reset reschedules t to fire after d, whether or not it was pending. It does
// not allocate, so a per-connection timer can be pushed back on every request.
func (t *Timer) Reset(d time.Duration) {
	t.when = t.loop.nanos() + int64(d)
	if t.index >= 0 {
		t.loop.timers.fix(t.index)
		return
	}
	t.loop.timers.push(t)
}

// Stop cancels t. It reports whether t was pending.
func (t *Timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	t.loop.timers.remove(t.index)
	return true
}

type timerHeap []*Timer

func (h timerHeap) less(i, j int) bool { return h[i].when < h[j].when }

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) push(t *Timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

func (h *timerHeap) remove(i int) {
	old := *h
	last := len(old) - 1
	t := old[i]
	if i != last {
		h.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		h.fix(i)
	}
	t.index = -1
}

func (h timerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h timerHeap) down(i0 int) bool {
	i := i0
	n := len(h)
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
