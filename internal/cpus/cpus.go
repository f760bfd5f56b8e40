// Package cpus is what prefork knows about the CPUs it may use: how many
// workers "auto" means (the affinity mask, lowered to the cgroup v2 quota),
// which CPUs --cpu-affinity spreads worker slots over, and pinning a whole
// worker process to one of them.
package cpus

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Usable is the number of CPUs this process may run on (its affinity mask),
// lowered to the cgroup v2 CPU quota (cpu.max) when one is set, rounded up:
// a 1.5-CPU quota gets 2.
func Usable() int {
	n := runtime.NumCPU() // the affinity mask at start
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		n = set.Count()
	}
	if q := cgroupQuota(); q > 0 && q < float64(n) {
		n = int(math.Ceil(q))
	}
	return max(n, 1)
}

// Allowed lists the CPUs in this process's affinity mask.
func Allowed() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// ForSlot is the CPU worker slot k is pinned to under --cpu-affinity: the
// k-th allowed CPU, modulo their number. ok is false when none is known.
func ForSlot(k int) (cpu int, ok bool) {
	all := Allowed()
	if len(all) == 0 {
		return 0, false
	}
	return all[k%len(all)], true
}

// PinProcess pins every thread of this process to cpu, the way nginx's
// worker_cpu_affinity pins a worker process. The loop's goroutine is not
// locked to a thread (see loop.Run), so the whole process is pinned: threads
// that exist now are pinned one by one, and threads the runtime starts later
// inherit the mask of the thread that creates them. Two passes catch a thread
// started during the first.
func PinProcess(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for pass := 0; pass < 2; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin to CPU %d: %w", cpu, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// ESRCH: the thread exited since the directory was read.
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin to CPU %d: %w", cpu, os.NewSyscallError("sched_setaffinity", err))
			}
		}
	}
	return nil
}

// cgroupQuota reads the CPU quota of this process's cgroup v2 ("max" or no
// file: 0).
func cgroupQuota() float64 {
	path := "/sys/fs/cgroup/cpu.max"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		// cgroup v2: a single line "0::/path".
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				if _, err := os.Stat("/sys/fs/cgroup" + rest + "/cpu.max"); err == nil {
					path = "/sys/fs/cgroup" + rest + "/cpu.max"
				}
			}
		}
	}
	return parseCPUMax(path)
}

func parseCPUMax(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return 0
	}
	return quota / period
}
