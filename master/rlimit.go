package master

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// RlimitMax, as Config.RlimitNofile, raises the soft RLIMIT_NOFILE to the
// hard one (the default: nginx's worker_rlimit_nofile made automatic).
const RlimitMax = 0

// ParseRlimitNofile reads --rlimit-nofile: "max" or a number of descriptors.
func ParseRlimitNofile(s string) (uint64, error) {
	if s == "max" || s == "" {
		return RlimitMax, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 64 || n > 1<<30 {
		return 0, fmt.Errorf("--rlimit-nofile %q: want max or a number of descriptors from 64 to 1073741824", s)
	}
	return n, nil
}

// rlimitFor returns the RLIMIT_NOFILE the master sets for want (RlimitMax
// or a number: soft and hard limit), from the current one, or why it cannot.
func rlimitFor(want uint64, cur unix.Rlimit, root bool) (unix.Rlimit, error) {
	if want == RlimitMax {
		return unix.Rlimit{Cur: cur.Max, Max: cur.Max}, nil
	}
	if want > cur.Max && !root {
		return cur, fmt.Errorf("--rlimit-nofile %d: above the hard limit %d, which only root may raise", want, cur.Max)
	}
	// Both: a Go worker raises its soft limit to the hard one as it starts
	// (the os package does so in every Go program), so a lower soft limit
	// alone would not hold in the workers.
	return unix.Rlimit{Cur: want, Max: want}, nil
}

// checkRlimit is Validate's part: a limit the master could not set.
func checkRlimit(want uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return fmt.Errorf("--rlimit-nofile: %w", os.NewSyscallError("getrlimit", err))
	}
	_, err := rlimitFor(want, cur, os.Geteuid() == 0)
	return err
}

// applyRlimit sets the master's RLIMIT_NOFILE, which its workers inherit.
// Through unix.Setrlimit (syscall.Setrlimit), so os/exec no longer restores
// the limit the process started with in the children it starts (Go raises
// its own soft limit at start but gives children the original one).
func applyRlimit(want uint64, log *slog.Logger) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return fmt.Errorf("--rlimit-nofile: %w", os.NewSyscallError("getrlimit", err))
	}
	next, err := rlimitFor(want, cur, os.Geteuid() == 0)
	if err != nil {
		return err
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err != nil {
		return fmt.Errorf("--rlimit-nofile %d: %w", next.Cur, os.NewSyscallError("setrlimit", err))
	}
	log.Info("file descriptor limit (RLIMIT_NOFILE) for master and workers",
		"soft", next.Cur, "hard", next.Max, "was_soft", cur.Cur)
	return nil
}
