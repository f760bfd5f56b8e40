package master_test

import (
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// scaleCLI runs `prefork scale N --pidfile P` and returns its output and how
// long it took.
func (s *server) scaleCLI(t *testing.T, n string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command(bin, "scale", n, "--pidfile", s.pidfile, "--timeout", "30s").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		s.dumpLogs()
		t.Fatalf("prefork scale %s: %v\n%s", n, err, out)
	}
	return strings.TrimSpace(string(out)), took
}

// TestScaleCommand: `prefork scale N` under load, 2 → 4 → 1 → 1: when it
// returns, exactly N workers are ready and no other runs (retired ones have
// exited); the second scale 1 answers at once; no request fails.
func TestScaleCommand(t *testing.T) {
	s := startServer(t, 2)
	l := startLoad(t, s.addr, 4)
	l.waitRequests(t, 50)
	for i, tc := range []struct {
		n    string
		want int
	}{{"4", 4}, {"1", 1}, {"1", 1}} {
		started := len(s.logsWith("worker started"))
		before := s.readyWorkers()
		out, took := s.scaleCLI(t, tc.n)
		// Checked the moment it returns, before anything can move on.
		st := s.status()
		ready := 0
		for _, w := range st.Workers {
			if w.State == "ready" {
				ready++
			}
		}
		if st.Desired != tc.want || st.Running != tc.want || ready != tc.want || len(st.Workers) != tc.want {
			t.Errorf("after scale %s: desired %d, running %d, %d ready of %d workers; want %d of each",
				tc.n, st.Desired, st.Running, ready, len(st.Workers), tc.want)
		}
		if got := len(s.workerPIDs()); got != tc.want {
			t.Errorf("after scale %s: %d worker processes, want %d (retired ones exited)", tc.n, got, tc.want)
		}
		if want := tc.n + " workers desired, " + tc.n + " running"; out != want {
			t.Errorf("scale %s printed %q, want %q", tc.n, out, want)
		}
		if i == 2 {
			// Already at its count: nothing started or retired, the same
			// worker serving.
			if got := len(s.logsWith("worker started")); got != started || !maps.Equal(s.readyWorkers(), before) {
				t.Errorf("scale 1 at 1: %d workers started, ready %v (was %v); want nothing changed", got-started, s.readyWorkers(), before)
			}
		}
		t.Logf("scale %s: %v", tc.n, took.Round(time.Millisecond))
		l.waitRequests(t, 50)
	}
	if got := len(s.logsWith("scale answered")); got != 3 {
		t.Errorf("scale answers logged: got %d, want 3", got)
	}
	l.check(t)
}
