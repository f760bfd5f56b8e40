package master

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// writePidFile writes the pid atomically (temp file + rename), refusing to
// replace the pidfile of a live process.
func writePidFile(path string) error {
	if pid := livePid(path); pid != 0 {
		return fmt.Errorf("pidfile %s: prefork already running as pid %d", path, pid)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pidfile: %w", err)
	}
	return nil
}

// livePid returns the pid in the pidfile at path if that process is alive
// and is not this one; 0 otherwise (no file, garbage, a stale pid).
func livePid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 || pid == os.Getpid() {
		return 0
	}
	// EPERM: alive, another user's.
	if err := unix.Kill(pid, 0); err == nil || err == unix.EPERM {
		return pid
	}
	return 0
}
