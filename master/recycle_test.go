package master_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testkit"
)

// logInt reads a numeric attribute of a JSON log record.
func logInt(t testing.TB, rec map[string]any, key string) int64 {
	t.Helper()
	v, ok := rec[key].(float64)
	if !ok {
		t.Fatalf("log record %v: no number %q", rec, key)
	}
	return int64(v)
}

// recycledBy returns the "worker recycled" records of reason.
func (s *server) recycledBy(reason string) []map[string]any {
	var out []map[string]any
	for _, rec := range s.logsWith("worker recycled") {
		if rec["reason"] == reason {
			out = append(out, rec)
		}
	}
	return out
}

// settle stops the load (checking it lost nothing), then waits until n
// workers serve, nothing else runs, and the master's restart count for
// reason equals the recycles it logged (a heartbeat may still start one just
// after the load stops; the count and the log then move together).
func settle(t *testing.T, s *server, l *load, n int, reason string) {
	t.Helper()
	l.check(t)
	var counted float64
	var logged int
	testkit.WaitFor(t, fmt.Sprintf("%d workers serving, restarts{%s} equal to the recycles logged", n, reason), 30*time.Second, func() bool {
		st := s.status()
		ready := 0
		for _, w := range st.Workers {
			if w.State == "ready" {
				ready++
			}
		}
		v, ok := sample(t, scrape(t, s), "prefork_worker_restarts_total", fmt.Sprintf(`{reason=%q}`, reason))
		if !ok {
			t.Fatalf("prefork_worker_restarts_total{reason=%q} missing", reason)
		}
		counted, logged = v, len(s.recycledBy(reason))
		return ready == n && len(st.Workers) == n && len(s.workerPIDs()) == n && int(counted) == logged
	})
	t.Logf("%d recycles (%s), counted and logged", logged, reason)
}

// TestRecycleMaxRequests: under a load of new connections, workers that
// reach --max-requests (+ their jitter) are replaced, new worker ready
// first, without a failed request; the limits differ per worker (jitter),
// and every recycle is counted and logged.
func TestRecycleMaxRequests(t *testing.T) {
	const workers, limit, jitter = 3, 150, 100
	s := startServer(t, workers, "--max-requests", fmt.Sprint(limit), "--max-requests-jitter", fmt.Sprint(jitter),
		"--worker-timeout", "2s") // heartbeats every 500 ms
	first := s.readyWorkers()
	l := startLoad(t, s.addr, 4)
	// Every slot recycled at least once, two slots at least twice.
	testkit.WaitFor(t, "every slot recycled, some twice", 60*time.Second, func() bool {
		per := map[int]int{}
		for _, rec := range s.recycledBy("max_requests") {
			per[int(logInt(t, rec, "slot"))]++
		}
		twice := 0
		for _, n := range per {
			if n >= 2 {
				twice++
			}
		}
		return len(per) == workers && twice >= 2
	})
	settle(t, s, l, workers, "max_requests")
	recs := s.recycledBy("max_requests")
	// Each worker's limit, as logged at its start.
	limits := map[int64]int64{} // pid → limit
	distinct := map[int64]bool{}
	for _, rec := range s.logsWith("worker started") {
		n := logInt(t, rec, "max_requests")
		if n < limit || n > limit+jitter {
			t.Errorf("worker %v: limit %d, want %d..%d", rec["pid"], n, limit, limit+jitter)
		}
		limits[logInt(t, rec, "pid")] = n
		distinct[n] = true
	}
	if len(distinct) < 3 {
		t.Errorf("limits drawn: %v; want several distinct (jitter 0..%d)", distinct, jitter)
	}
	// The worker reports the turn it reaches its limit (Spec.RecycleAfter),
	// not at its next heartbeat 500 ms and hundreds of requests later: the
	// count the master decides on is at most a turn's worth (4 clients)
	// past the limit, for most recycles (one that waited for another's to
	// finish, one at a time, may be decided on a later heartbeat's count).
	var over []int64
	for _, rec := range s.logsWith("recycling worker") {
		if rec["reason"] == "max_requests" {
			over = append(over, logInt(t, rec, "requests")-logInt(t, rec, "max_requests"))
		}
	}
	slices.Sort(over)
	if len(over) == 0 || over[len(over)/2] > 16 {
		t.Errorf("requests past the limit when the recycle was decided: %v; want a median within 16", over)
	}
	t.Logf("requests past the limit at each recycle's decision: %v", over)
	for _, rec := range recs {
		old := logInt(t, rec, "old_pid")
		if served, lim := logInt(t, rec, "old_requests"), limits[old]; lim == 0 || served < lim {
			t.Errorf("worker %d recycled after %d requests, under its limit %d", old, served, lim)
		}
	}
	// New processes in every slot, generations past the first.
	for _, w := range s.status().Workers {
		if w.PID == first[w.Slot] || w.Generation < 2 {
			t.Errorf("slot %d: pid %d gen %d; want a new worker (was pid %d, gen 1)", w.Slot, w.PID, w.Generation, first[w.Slot])
		}
		if w.Restarts != 0 {
			t.Errorf("slot %d: %d restarts counted as crashes", w.Slot, w.Restarts)
		}
	}
	if st := s.status(); st.Reloads != 0 {
		t.Errorf("recycles counted as reloads: %d", st.Reloads)
	}
	if n := len(s.logsWith("reload done")); n != 0 {
		t.Errorf("%d \"reload done\" logged with no reload", n)
	}
}

// TestRecycleMaxRSS: a worker whose handler leaks (testbin's leak protocol
// keeps 256 KiB per request) is replaced once its RSS passes
// --max-worker-rss, without a failed request.
func TestRecycleMaxRSS(t *testing.T) {
	const workers, maxRSS = 2, 120 << 20
	s := startServer(t, workers, "--proto", "leak", "--max-worker-rss", "120m", "--worker-timeout", "2s")
	l := startLoad(t, s.addr, 4)
	testkit.WaitFor(t, "both slots recycled by RSS", 60*time.Second, func() bool {
		slots := map[int64]bool{}
		for _, rec := range s.recycledBy("max_rss") {
			slots[logInt(t, rec, "slot")] = true
		}
		return len(slots) == workers
	})
	settle(t, s, l, workers, "max_rss")
	for _, rec := range s.logsWith("recycling worker") {
		if rss := logInt(t, rec, "rss"); rss <= maxRSS || rec["reason"] != "max_rss" {
			t.Errorf("recycled with rss %d (limit %d), reason %v", rss, maxRSS, rec["reason"])
		}
	}
	if n := len(s.recycledBy("max_requests")); n != 0 {
		t.Errorf("%d recycles by requests without --max-requests", n)
	}
}
