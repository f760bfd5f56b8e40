package chaoskit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prefork/prefork/internal/proc"
)

// Children returns the live (not zombie) children of pid, from /proc/*/stat.
func Children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := proc.ReadStat(cpid)
		if err != nil {
			continue
		}
		if st.PPID == pid && st.State != "Z" {
			out = append(out, cpid)
		}
	}
	return out
}

// FDCount returns how many file descriptors pid has open (/proc/PID/fd).
func FDCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// RSS returns pid's resident set size in bytes (VmRSS of /proc/PID/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"N kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or a zombie)")
}

// socketInodes returns the inodes of the sockets pid has open: the targets
// "socket:[INODE]" of its /proc/PID/fd links.
func socketInodes(pid int) (map[uint64]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since ReadDir
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out, nil
}

// tcpListen is TCP_LISTEN in the st column of /proc/net/tcp.
const tcpListen = 0x0A

// tcpSocket is one line of /proc/net/tcp or /proc/net/tcp6: the ports, the
// state and the inode (0 for a TIME_WAIT socket, which no process holds).
type tcpSocket struct {
	localPort, remotePort uint16
	state                 int
	inode                 uint64
}

// parseTCPLine parses one line of /proc/net/tcp{,6} after the header:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//	0: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000 0 0 12345 ...
//
// Addresses are HEXIP:HEXPORT; only the ports are kept.
func parseTCPLine(line string) (tcpSocket, error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return tcpSocket{}, fmt.Errorf("tcp line %q: %d fields, want 10 or more", line, len(f))
	}
	port := func(addr string) (uint16, error) {
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return 0, fmt.Errorf("address %q: no port", addr)
		}
		p, err := strconv.ParseUint(addr[i+1:], 16, 16)
		return uint16(p), err
	}
	var s tcpSocket
	var err error
	if s.localPort, err = port(f[1]); err != nil {
		return s, fmt.Errorf("tcp line %q: %w", line, err)
	}
	if s.remotePort, err = port(f[2]); err != nil {
		return s, fmt.Errorf("tcp line %q: %w", line, err)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return s, fmt.Errorf("tcp line %q: state: %w", line, err)
	}
	s.state = int(st)
	if s.inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return s, fmt.Errorf("tcp line %q: inode: %w", line, err)
	}
	return s, nil
}

// tcpSockets reads /proc/net/tcp and /proc/net/tcp6 (either may be missing:
// no IPv6) of this process's network namespace.
func tcpSockets() ([]tcpSocket, error) {
	var out []tcpSocket
	read := 0
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		read++
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] { // the header first
			if strings.TrimSpace(line) == "" {
				continue
			}
			s, err := parseTCPLine(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, s)
		}
	}
	if read == 0 {
		return nil, errors.New("neither /proc/net/tcp nor /proc/net/tcp6 exists")
	}
	return out, nil
}

// PeerPorts returns the remote ports of the TCP connections pid holds whose
// local port is port: for a server's worker, the client ports of the
// connections it has accepted (and not closed). Connections still queued in a
// listening socket belong to no process and are not in it.
func PeerPorts(pid int, port uint16) (map[uint16]bool, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, err
	}
	socks, err := tcpSockets()
	if err != nil {
		return nil, err
	}
	out := map[uint16]bool{}
	for _, s := range socks {
		if s.inode != 0 && inodes[s.inode] && s.localPort == port && s.state != tcpListen {
			out[s.remotePort] = true
		}
	}
	return out, nil
}

// waitStopped waits until every thread of pid is stopped (state T or t in
// /proc/PID/task/TID/stat) or the process is gone, and reports whether it saw
// that within the deadline. kill(SIGSTOP) returns before the threads have
// stopped: one may still be inside accept4.
func waitStopped(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if allStopped(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func allStopped(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true // gone: it holds nothing
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // that thread is gone
		}
		st, err := proc.ParseStat(strings.TrimSpace(string(b)))
		if err != nil {
			return false
		}
		if st.State != "T" && st.State != "t" && st.State != "Z" && st.State != "X" {
			return false
		}
	}
	return true
}
