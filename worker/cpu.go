package worker

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// setProcs gives the worker one P unless GOMAXPROCS is set in its
// environment. A worker runs one loop goroutine; a second P would only let
// the scheduler move that goroutine between threads when it yields, and wake
// a spinning thread to look for work each time. With one P a yield is a trip
// through the scheduler on the same thread (measured in BENCHMARKS.md).
func setProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// pinProcess pins every thread of this process to cpu (--cpu-affinity), the
// way nginx's worker_cpu_affinity pins a worker process. The loop's goroutine
// is not locked to a thread (see loop.Run), so the whole process is pinned:
// threads that exist now are pinned one by one, and threads the runtime
// starts later inherit the mask of the thread that creates them. Two passes
// catch a thread started during the first.
func pinProcess(cpu int) error {
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
