package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prefork/prefork/internal/proc"
)

// procStat is what the report takes from /proc/PID/stat: internal/proc's
// parse, shared with the tests that watch worker processes.
type procStat = proc.Stat

// readProcs reads /proc/[0-9]*/stat under procDir. A process that ends
// while it is read is left out.
func readProcs(procDir string) (map[int]procStat, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, err
	}
	procs := map[int]procStat{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		st, err := proc.ParseStat(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, err
		}
		procs[st.PID] = st
	}
	return procs, nil
}

// tree returns root and its descendants among procs, sorted; none if root
// is not among them.
func tree(procs map[int]procStat, root int) []int {
	if _, ok := procs[root]; !ok {
		return nil
	}
	children := map[int][]int{}
	for pid, st := range procs {
		children[st.PPID] = append(children[st.PPID], pid)
	}
	out, seen := []int{root}, map[int]bool{root: true}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i]] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return out
}

// treeTicks is utime+stime summed over the process tree of root.
func treeTicks(procs map[int]procStat, root int) int64 {
	var t int64
	for _, pid := range tree(procs, root) {
		t += procs[pid].UTime + procs[pid].STime
	}
	return t
}

// parseVmRSS returns the VmRSS of a /proc/PID/status, in KiB (0 for a
// kernel thread or a zombie, which have none).
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, fmt.Errorf("VmRSS line %q", line)
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, nil
}

// treeRSS is VmRSS summed over the process tree of root, in KiB.
func treeRSS(procDir string, root int) (int64, error) {
	procs, err := readProcs(procDir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, pid := range tree(procs, root) {
		b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "status"))
		if err != nil {
			continue // gone
		}
		kb, err := parseVmRSS(string(b))
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %v", pid, err)
		}
		sum += kb
	}
	return sum, nil
}

// cpuTicks is the first line of /proc/stat: ticks of all CPUs together.
type cpuTicks struct {
	busy  int64 // user + nice + system + irq + softirq (not idle, iowait, steal, guest)
	steal int64
}

// parseProcStatCPU reads the "cpu " line of /proc/stat:
// cpu user nice system idle iowait irq softirq steal guest guest_nice.
func parseProcStatCPU(r io.Reader) (cpuTicks, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return cpuTicks{}, fmt.Errorf("/proc/stat cpu line %q: want 8 figures or more", sc.Text())
		}
		var n [9]int64
		for i := 1; i < 9; i++ {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return cpuTicks{}, fmt.Errorf("/proc/stat cpu line: %v", err)
			}
			n[i] = v
		}
		return cpuTicks{busy: n[1] + n[2] + n[3] + n[6] + n[7], steal: n[8]}, nil
	}
	if err := sc.Err(); err != nil {
		return cpuTicks{}, err
	}
	return cpuTicks{}, errors.New("/proc/stat: no cpu line")
}

// parseTimes returns the CPU seconds (user + system) of the reaped
// children, the second line of bash's `times`:
//
//	0m0.012s 0m0.004s
//	1m2.345s 0m0.678s
//
// A locale may write the decimal point as a comma.
func parseTimes(r io.Reader) (float64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		return 0, fmt.Errorf("times: %d lines, want 2", len(lines))
	}
	f := strings.Fields(lines[1])
	if len(f) != 2 {
		return 0, fmt.Errorf("times: children's line %q, want 2 fields", lines[1])
	}
	var sum float64
	for _, d := range f {
		m, s, ok := strings.Cut(strings.TrimSuffix(d, "s"), "m")
		if !ok || !strings.HasSuffix(d, "s") {
			return 0, fmt.Errorf("times: %q is not MmS.SSSs", d)
		}
		mins, err1 := strconv.ParseFloat(m, 64)
		secs, err2 := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("times: %q: %v", d, err)
		}
		sum += mins*60 + secs
	}
	return sum, nil
}

// cpuSnap is one reading of the CPU counters around a throughput run.
type cpuSnap struct {
	Wall  float64 // seconds since the epoch
	Busy  int64   // /proc/stat ticks, all CPUs
	Steal int64   // /proc/stat ticks, all CPUs
	Tree  int64   // utime+stime ticks of the server's process tree
	Child float64 // CPU seconds of the script's reaped children (the load generator)
}

func (s cpuSnap) String() string {
	return fmt.Sprintf("wall=%.6f busy=%d steal=%d tree=%d child=%s", s.Wall, s.Busy, s.Steal, s.Tree, plain(s.Child))
}

func parseCPUSnap(line string) (cpuSnap, error) {
	kv, err := parseKV(strings.NewReader(line))
	if err != nil {
		return cpuSnap{}, err
	}
	var s cpuSnap
	var errs []error
	num := func(k string) float64 {
		v, err := strconv.ParseFloat(kv[k], 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", k, err))
		}
		return v
	}
	s.Wall, s.Child = num("wall"), num("child")
	s.Busy, s.Steal, s.Tree = int64(num("busy")), int64(num("steal")), int64(num("tree"))
	if err := errors.Join(errs...); err != nil {
		return cpuSnap{}, fmt.Errorf("cpu snapshot %q: %v", line, err)
	}
	return s, nil
}

// cpuUse is what cpu-delta reports of one run.
type cpuUse struct {
	OtherPct  float64 // % of all CPUs: busy, less the server's tree and the load generator
	StealPct  float64 // % of all CPUs: steal
	ServerCPU float64 // CPU seconds of the server's tree
	ClientCPU float64 // CPU seconds of the load generator (the reaped children)
}

// cpuDelta compares two snapshots of one run, hz being the ticks per
// second of /proc (getconf CLK_TCK) and ncpu the number of CPUs.
func cpuDelta(a, b cpuSnap, hz, ncpu int) (cpuUse, error) {
	secs := b.Wall - a.Wall
	if secs <= 0 || hz <= 0 || ncpu <= 0 {
		return cpuUse{}, fmt.Errorf("%.6f s between the snapshots, hz %d, %d CPUs: want all > 0", secs, hz, ncpu)
	}
	all := secs * float64(hz) * float64(ncpu) / 100 // ticks in 1 % of all CPUs
	tree := max(b.Tree-a.Tree, 0)                   // less if a process of the tree ended
	child := (b.Child - a.Child) * float64(hz)
	other := (float64(b.Busy-a.Busy) - float64(tree) - child) / all
	return cpuUse{
		OtherPct:  max(other, 0),
		StealPct:  float64(b.Steal-a.Steal) / all,
		ServerCPU: float64(tree) / float64(hz),
		ClientCPU: max(b.Child-a.Child, 0),
	}, nil
}

const procDir = "/proc"

func rootArg(args []string, n int, what string) (int, error) {
	if len(args) != n {
		return 0, fmt.Errorf("want %s", what)
	}
	root, err := strconv.Atoi(args[0])
	if err != nil || root <= 0 {
		return 0, fmt.Errorf("ROOT %q is not a PID", args[0])
	}
	return root, nil
}

func cmdPids(args []string, stdout io.Writer) error {
	root, err := rootArg(args, 1, "ROOT")
	if err != nil {
		return err
	}
	procs, err := readProcs(procDir)
	if err != nil {
		return err
	}
	for _, pid := range tree(procs, root) {
		if _, err := fmt.Fprintln(stdout, pid); err != nil {
			return err
		}
	}
	return nil
}

func cmdRSS(args []string, stdout io.Writer) error {
	root, err := rootArg(args, 1, "ROOT")
	if err != nil {
		return err
	}
	kb, err := treeRSS(procDir, root)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, kb)
	return err
}

func cmdCPUSnap(args []string, stdout io.Writer) error {
	root, err := rootArg(args, 2, "ROOT TIMES-FILE")
	if err != nil {
		return err
	}
	tf, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer tf.Close()
	child, err := parseTimes(tf)
	if err != nil {
		return err
	}
	sf, err := os.Open(filepath.Join(procDir, "stat"))
	if err != nil {
		return err
	}
	defer sf.Close()
	cpu, err := parseProcStatCPU(sf)
	if err != nil {
		return err
	}
	procs, err := readProcs(procDir)
	if err != nil {
		return err
	}
	snap := cpuSnap{
		Wall:  float64(time.Now().UnixNano()) / 1e9,
		Busy:  cpu.busy,
		Steal: cpu.steal,
		Tree:  treeTicks(procs, root),
		Child: child,
	}
	_, err = fmt.Fprintln(stdout, snap)
	return err
}

func cmdCPUDelta(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cpu-delta", flag.ContinueOnError)
	hz := fs.Int("hz", 100, "clock ticks per second of /proc (getconf CLK_TCK)")
	ncpu := fs.Int("ncpu", 1, "CPUs (nproc)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("want BEGIN END (two cpu-snap lines)")
	}
	a, err := parseCPUSnap(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := parseCPUSnap(fs.Arg(1))
	if err != nil {
		return err
	}
	u, err := cpuDelta(a, b, *hz, *ncpu)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.0f %.0f %s %.3f\n", u.OtherPct, u.StealPct, plain(u.ServerCPU), u.ClientCPU)
	return err
}
