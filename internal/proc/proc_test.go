package proc

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// statLine makes a /proc/PID/stat line with the given comm, state, ppid,
// utime and stime; the other fields are those of a real process.
func statLine(pid, comm, state, ppid, utime, stime string) string {
	return pid + " (" + comm + ") " + state + " " + ppid +
		" 1234 1234 0 -1 4194560 120 0 0 0 " + utime + " " + stime +
		" 0 0 20 0 1 0 5678 12345678 345 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Stat
	}{
		{"plain", statLine("42", "prefork", "S", "1", "7", "3"),
			Stat{PID: 42, Comm: "prefork", State: "S", PPID: 1, UTime: 7, STime: 3}},
		{"comm with spaces", statLine("43", "Web Content", "R", "42", "0", "0"),
			Stat{PID: 43, Comm: "Web Content", State: "R", PPID: 42}},
		{"comm with ) (", statLine("44", "a) (b", "Z", "43", "11", "12"),
			Stat{PID: 44, Comm: "a) (b", State: "Z", PPID: 43, UTime: 11, STime: 12}},
		{"comm that looks like fields", statLine("45", "x) R 1 (y", "D", "44", "1", "2"),
			Stat{PID: 45, Comm: "x) R 1 (y", State: "D", PPID: 44, UTime: 1, STime: 2}},
		{"empty comm", statLine("46", "", "T", "45", "0", "9"),
			Stat{PID: 46, State: "T", PPID: 45, STime: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat(tc.line)
			if err != nil {
				t.Fatalf("ParseStat(%q): %v", tc.line, err)
			}
			if got != tc.want {
				t.Errorf("ParseStat(%q):\n got %+v\nwant %+v", tc.line, got, tc.want)
			}
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"42 prefork S 1",                      // no parentheses
		"42 )prefork( S 1 2 3 4 5 6 7 8 9 10", // ')' before '('
		"x (prefork) S 1 0 0 0 0 0 0 0 0 0 0 0",
		"42 (prefork) S 1 2", // too few fields
		statLine("42", "a) (b", "S", "p", "0", "0"), // ppid not a number
		statLine("42", "prefork", "S", "1", "u", "0"),
	} {
		if st, err := ParseStat(line); err == nil {
			t.Errorf("ParseStat(%q): got %+v, want an error", line, st)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc/PID/stat is the main thread's: running (R) or, while another
	// thread of this test runs, sleeping (S).
	if st.PID != os.Getpid() || st.PPID != os.Getppid() || (st.State != "R" && st.State != "S") {
		t.Errorf("ReadStat(self): got %+v, want pid %d, ppid %d, state R or S", st, os.Getpid(), os.Getppid())
	}
	exe, _ := os.Executable()
	if base := exe[strings.LastIndexByte(exe, '/')+1:]; !strings.HasPrefix(base, st.Comm) {
		t.Errorf("ReadStat(self): comm %q is not the start of the executable's name %q", st.Comm, base)
	}
}

func TestReadStatGone(t *testing.T) {
	// Above the kernel's largest pid_max (2^22), so never a live process.
	if _, err := ReadStat(1 << 23); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStat of no process: got %v, want fs.ErrNotExist", err)
	}
}
