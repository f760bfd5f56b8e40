package cpus

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseCPUMax(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          float64
	}{
		{"no quota", "max 100000\n", 0},
		{"one and a half", "150000 100000\n", 1.5},
		{"half, no newline", "50000 100000", 0.5},
		{"garbage", "garbage", 0},
		{"zero period", "100 0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "cpu.max")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := parseCPUMax(p); got != tc.want {
				t.Errorf("parseCPUMax(%q): got %v, want %v", tc.content, got, tc.want)
			}
		})
	}
	if got := parseCPUMax(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file: got %v, want 0", got)
	}
}

func TestUsableAndForSlot(t *testing.T) {
	all := Allowed()
	if len(all) == 0 {
		t.Fatal("Allowed: no CPU in this process's affinity mask")
	}
	if n := Usable(); n < 1 || n > len(all) {
		t.Errorf("Usable: got %d, want 1..%d", n, len(all))
	}
	for k := 0; k < 2*len(all); k++ {
		cpu, ok := ForSlot(k)
		if !ok || cpu != all[k%len(all)] || !slices.Contains(all, cpu) {
			t.Errorf("ForSlot(%d): got %d, %v; want %d", k, cpu, ok, all[k%len(all)])
		}
	}
}
