package loop

import (
	"math/bits"
	"time"
)

// Stats are a loop's counters: plain integers, written only by the loop's
// thread and read there too (Loop.Stats), so counting costs no atomics.
type Stats struct {
	Accepted     uint64             // connections accepted
	Closed       [numReasons]uint64 // connections closed, by CloseReason
	ReadBytes    uint64             // bytes read from connections
	WrittenBytes uint64             // bytes written to connections
	AcceptEmpty  uint64             // listener wake-ups whose first accept found nothing
	AcceptErrors uint64             // accept errors other than EAGAIN/ECONNABORTED
	AcceptShed   uint64             // connections accepted and closed at once for lack of fds
	Paused       uint64             // times reading stopped for backpressure
	AcceptPaused uint64             // times accepting stopped at Config.MaxConns
	FilesSent    uint64             // files queued with SendFile
	Wakeups      uint64             // epoll_wait returns
	Events       uint64             // events epoll_wait returned, in all
	TurnNanosSum uint64             // time spent in loop turns, in all
	// EventsPerWait[i] counts epoll_wait returns with n events where
	// bits.Len(n) == i (bucket upper bounds 0, 1, 3, 7, 15, ... events).
	EventsPerWait [12]uint64
	// TurnNanos[i] counts loop turns (event handling after a wake-up) whose
	// duration d in microseconds had bits.Len(d) == i (upper bounds 0µs, 1µs,
	// 3µs, 7µs, ...).
	TurnNanos [24]uint64
	Active    int // open connections
	// InputBuffered and OutputBuffered sum the bytes connections hold:
	// unconsumed input and output the kernel has not taken yet.
	InputBuffered  int
	OutputBuffered int
}

// Stats returns a copy of the loop's counters (O(open fds): it sums the
// connections' buffers). Call it on the loop's thread
// (from a handler, a timer or a task given to Post).
func (l *Loop) Stats() Stats {
	s := l.stats
	s.Active = l.nconns
	for _, c := range l.conns {
		if c != nil {
			s.InputBuffered += len(c.in)
			s.OutputBuffered += c.pending()
		}
	}
	return s
}

// bucketCount maps an event count to its power-of-two bucket.
func bucketCount(n int) int {
	return min(bits.Len(uint(n)), len(Stats{}.EventsPerWait)-1)
}

func bucketNanos(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	return min(bits.Len64(us), len(Stats{}.TurnNanos)-1)
}
