// Package proc reads a Linux process's /proc/PID/stat.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what prefork takes from /proc/PID/stat (see proc_pid_stat(5)).
type Stat struct {
	PID   int
	Comm  string // the executable's name, without its parentheses
	State string // "R", "S", "D", "Z", "T", ...
	PPID  int
	// UTime and STime are the CPU time spent in user and kernel mode by every
	// thread of the process, in clock ticks (sysconf(_SC_CLK_TCK)).
	UTime, STime int64
}

// ParseStat parses one /proc/PID/stat line. comm, the second field, is in
// parentheses and may hold spaces and parentheses itself, so it runs from the
// first '(' to the last ')', and the fields after it are counted from there.
func ParseStat(line string) (Stat, error) {
	var st Stat
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return st, fmt.Errorf("stat %q: no (comm)", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return st, fmt.Errorf("stat %q: pid: %v", line, err)
	}
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
	f := strings.Fields(line[end+1:])
	if len(f) < 13 {
		return st, fmt.Errorf("stat %q: %d fields after comm, want 13 or more", line, len(f))
	}
	st.PID, st.Comm, st.State = pid, line[open+1:end], f[0]
	if st.PPID, err = strconv.Atoi(f[1]); err == nil {
		if st.UTime, err = strconv.ParseInt(f[11], 10, 64); err == nil {
			st.STime, err = strconv.ParseInt(f[12], 10, 64)
		}
	}
	if err != nil {
		return Stat{}, fmt.Errorf("stat %q: %v", line, err)
	}
	return st, nil
}

// ReadStat reads and parses /proc/PID/stat. The error wraps fs.ErrNotExist
// when there is no such process (any more).
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(strings.TrimSpace(string(b)))
}

// RSS returns the resident set size of process pid, in bytes (VmRSS in
// /proc/PID/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmRSS %q: %v", pid, v, err)
			}
			return kib << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
