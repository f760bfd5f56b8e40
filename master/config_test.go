package master

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 30*time.Second
	tests := []struct {
		crashes int
		want    time.Duration
	}{
		{0, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{9, 25600 * time.Millisecond}, {10, hi}, {1000, hi},
	}
	for _, tc := range tests {
		if got := backoff(tc.crashes, lo, hi); got != tc.want {
			t.Errorf("backoff(%d): got %v, want %v", tc.crashes, got, tc.want)
		}
	}
}

func TestParseWorkers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{{"1", 1, true}, {"16", 16, true}, {"0", 0, false}, {"-2", 0, false}, {"x", 0, false}} {
		got, err := ParseWorkers(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseWorkers(%q): got %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if n, err := ParseWorkers("auto"); err != nil || n < 1 || n > UsableCPUs() {
		t.Errorf("ParseWorkers(auto): got %d, %v", n, err)
	}
}

func TestParseCPUMax(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    float64
	}{{"max 100000\n", 0}, {"150000 100000\n", 1.5}, {"50000 100000", 0.5}, {"garbage", 0}} {
		p := filepath.Join(dir, "cpu.max")
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := parseCPUMax(p); got != tc.want {
			t.Errorf("parseCPUMax(%q): got %v, want %v", tc.content, got, tc.want)
		}
	}
	if got := parseCPUMax(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file: got %v, want 0", got)
	}
}
