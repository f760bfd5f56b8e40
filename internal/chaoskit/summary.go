package chaoskit

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// NearKill: a failure on a new connection counts as "during a SIGKILL" in
// Summary.NearKill if a SIGKILL came between NearKill before its dial and
// its failure (its connection may have waited in the dead worker's queue).
const NearKill = time.Second

// Summary sorts a load's requests and failures against the chaos's events.
type Summary struct {
	Requests, OK, Failed int64

	// Killed are the failures on connections a SIGKILLed worker held when
	// it died (KilledReused of them on a keep-alive connection that had
	// been answered before).
	Killed, KilledReused int
	// The others: reload and scaling failures, whose target is 0.
	// OtherReused failed on a keep-alive connection that had been answered
	// before; OtherFresh were the first request of their connection (the
	// dial included).
	OtherReused, OtherFresh int
	// NearKill of the OtherFresh had a SIGKILL between NearKill before
	// their dial and their failure: a connection queued in the listening
	// socket when a worker died, lost (or waiting longer than the load's
	// timeout for the slot's worker).
	NearKill int
	// OtherClasses counts the other failures by Failure.Class, the reused
	// and the fresh apart ("keep-alive: ..." / "new connection: ...").
	OtherClasses map[string]int
	// OtherAfter counts the other failures by the chaos event that came
	// last before each ("HUP", "TTOU", ...; "none").
	OtherAfter map[string]int
	// Others are the other failures (the first 100 of them), in time order.
	Others []Failure

	Signals      map[string]int // events by What
	KillsInexact int            // SIGKILLs whose victim's connections are not known for sure
	HeldByKilled int            // connections the killed workers held when they died
	MaxFrozen    time.Duration  // the longest a victim was stopped before its SIGKILL
	Latency      []time.Duration
}

// Summarize sorts l's failures: a failure on a connection whose client port
// was in a SIGKILL's Ports, that kill happening while the connection was open
// (between the start of its dial and the failure), is Killed; every other
// failure is a reload or scaling failure.
func Summarize(l *Load, events []Event) Summary {
	made, ok := l.Requests()
	s := Summary{Requests: made, OK: ok, Failed: l.Failed(), OtherClasses: map[string]int{}, OtherAfter: map[string]int{}, Signals: map[string]int{}}
	var kills []Event
	for _, e := range events {
		s.Signals[e.What]++
		if e.What == "SIGKILL" {
			kills = append(kills, e)
			s.HeldByKilled += len(e.Ports)
			s.MaxFrozen = max(s.MaxFrozen, e.Frozen)
			if !e.Exact {
				s.KillsInexact++
			}
		}
	}
	failures := l.Failures()
	sort.Slice(failures, func(i, j int) bool { return failures[i].At.Before(failures[j].At) })
	for _, f := range failures {
		if killedBy(f, kills) != nil {
			s.Killed++
			if f.Reused() {
				s.KilledReused++
			}
			continue
		}
		what := "new connection: "
		if f.Reused() {
			s.OtherReused++
			what = "keep-alive: "
		} else {
			s.OtherFresh++
			if killDuring(f.Dialed.Add(-NearKill), f.At, kills) {
				s.NearKill++
			}
		}
		s.OtherClasses[what+f.Class]++
		after := "none"
		if e, ok := lastBefore(f.At, events); ok {
			after = e.What
		}
		s.OtherAfter[what+after]++
		if len(s.Others) < 100 {
			s.Others = append(s.Others, f)
		}
	}
	s.Latency = l.Latencies()
	slices.Sort(s.Latency)
	return s
}

// killedBy returns the SIGKILL whose victim held f's connection, or nil.
func killedBy(f Failure, kills []Event) *Event {
	if f.Port == 0 {
		return nil // the dial failed: no connection
	}
	for i, k := range kills {
		if k.Ports[f.Port] && !k.At.Before(f.Dialed) && !k.At.After(f.At) {
			return &kills[i]
		}
	}
	return nil
}

// killDuring reports whether one of kills happened in [from, to].
func killDuring(from, to time.Time, kills []Event) bool {
	for _, k := range kills {
		if !k.At.Before(from) && !k.At.After(to) {
			return true
		}
	}
	return false
}

// lastBefore returns the latest of events at or before t.
func lastBefore(t time.Time, events []Event) (Event, bool) {
	var last Event
	found := false
	for _, e := range events {
		if !e.At.After(t) && (!found || e.At.After(last.At)) {
			last, found = e, true
		}
	}
	return last, found
}

// Quantile returns the q-quantile (0..1) of the successful requests'
// latencies (0 if there were none).
func (s Summary) Quantile(q float64) time.Duration {
	if len(s.Latency) == 0 {
		return 0
	}
	return s.Latency[min(len(s.Latency)-1, int(q*float64(len(s.Latency))))]
}

// Write prints the summary for a person; start is when the run began (times
// are printed from it) and events are the chaos's, to name what preceded each
// failure.
func (s Summary) Write(w io.Writer, start time.Time, events []Event) {
	var sigs []string
	for _, k := range []string{"SIGKILL", "HUP", "TTIN", "TTOU"} {
		sigs = append(sigs, fmt.Sprintf("%s %d", k, s.Signals[k]))
	}
	fmt.Fprintf(w, "chaos:    %s; the killed workers held %d client connections (stopped for at most %v before the kill)",
		strings.Join(sigs, ", "), s.HeldByKilled, s.MaxFrozen.Round(time.Microsecond))
	if s.KillsInexact > 0 {
		fmt.Fprintf(w, " (%d kills inexact)", s.KillsInexact)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "requests: %d made, %d ok, %d failed\n", s.Requests, s.OK, s.Failed)
	fmt.Fprintf(w, "latency:  p50 %v, p99 %v, p99.9 %v, max %v (successful requests)\n",
		s.Quantile(0.5).Round(time.Microsecond), s.Quantile(0.99).Round(time.Microsecond),
		s.Quantile(0.999).Round(time.Microsecond), s.Quantile(1).Round(time.Microsecond))
	fmt.Fprintf(w, "failed on a killed worker's own connections: %d (%d keep-alive, %d new)\n",
		s.Killed, s.KilledReused, s.Killed-s.KilledReused)
	fmt.Fprintf(w, "failed otherwise (reload/scaling; target 0):\n")
	fmt.Fprintf(w, "  reload, keep-alive:      %d\n", s.OtherReused)
	fmt.Fprintf(w, "  reload, new connection:  %d (%d with a SIGKILL from %v before the dial to the failure)\n", s.OtherFresh, s.NearKill, NearKill)
	if s.Failed > int64(s.Killed+s.OtherReused+s.OtherFresh) {
		fmt.Fprintf(w, "  (only the first %d failures were kept and sorted)\n", maxFailures)
	}
	fmt.Fprintf(w, "  by class: %s\n", counts(s.OtherClasses))
	fmt.Fprintf(w, "  by the chaos event last before each: %s\n", counts(s.OtherAfter))
	const examples = 20
	if len(s.Others) > 0 {
		fmt.Fprintf(w, "the first %d of them: time, connection, request, class, the chaos event last before it\n", min(examples, len(s.Others)))
	}
	for _, f := range s.Others[:min(examples, len(s.Others))] {
		kind := "new"
		if f.KeepAlive {
			kind = "keep-alive"
		}
		prev := "nothing"
		if e, ok := lastBefore(f.At, events); ok {
			prev = fmt.Sprintf("%s %d, %v before", e.What, e.PID, f.At.Sub(e.At).Round(time.Microsecond))
		}
		fmt.Fprintf(w, "  +%8.3fs  %-10s port %5d  request %3d  %-34s %s (got %d bytes; dialed %v before; %v)\n",
			f.At.Sub(start).Seconds(), kind, f.Port, f.Nth, f.Class, prev, f.Got, f.At.Sub(f.Dialed).Round(time.Microsecond), f.Err)
	}
}

// counts prints a count map as "k1 n1, k2 n2" in key order ("-" if empty).
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
