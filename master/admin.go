package master

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Status is the answer to the admin "status" command.
type Status struct {
	PID      int            `json:"pid"`
	Mode     Mode           `json:"mode"`
	Proto    string         `json:"proto"`
	Addrs    []string       `json:"addrs"`
	Metrics  string         `json:"metrics_addr,omitempty"` // as bound ("" disabled)
	Desired  int            `json:"workers_desired"`
	Running  int            `json:"workers_running"` // slots whose worker is ready
	Reloads  int            `json:"reloads"`
	Uptime   float64        `json:"uptime_seconds"`
	Stopping bool           `json:"stopping"`
	Workers  []WorkerStatus `json:"workers"`
	// Version is the running master's build; Exe the binary an upgrade
	// executes; Upgrade the last upgrade (nil: none since the start).
	Version string         `json:"version"`
	Exe     string         `json:"exe"`
	Upgrade *UpgradeStatus `json:"upgrade,omitempty"`
}

// WorkerStatus is one worker process in Status.
type WorkerStatus struct {
	Slot       int     `json:"slot"`
	PID        int     `json:"pid"`
	Generation int     `json:"generation"`
	State      string  `json:"state"`
	Uptime     float64 `json:"uptime_seconds"`
	Restarts   int     `json:"restarts"`
}

type adminReply struct {
	body []byte
	err  error
}

// startAdmin listens on the admin socket; each connection sends one command
// line and reads one JSON reply. The socket is mode 0600 from the moment it
// exists (listenAdmin), and a client whose uid is neither root nor the
// master's is refused (serveAdmin).
func (m *Master) startAdmin() error {
	path := m.cfg.AdminSocket
	if m.adopt != nil && m.adopt.Admin >= 0 {
		// The previous image's socket, carried across the upgrade's exec:
		// clients that connected meanwhile wait in its queue.
		ln, err := fileListener(m.adopt.Admin, "admin")
		if err != nil {
			return fmt.Errorf("admin socket: adopting it: %w", err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(true) // removed at stop, as one this image made
		}
		m.serveAdminOn(ln)
		return nil
	}
	// A socket file left by a master that died can be replaced; a live one
	// answers and must not be.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another master is listening", path)
	}
	_ = os.Remove(path)
	ln, err := listenAdmin(path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	m.serveAdminOn(ln)
	return nil
}

// serveAdminOn serves admin clients on ln until it is closed.
func (m *Master) serveAdminOn(ln net.Listener) {
	m.admin = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at stop
			}
			go m.serveAdmin(c)
		}
	}()
}

// adminMode is the admin socket's mode: connect(2) to a unix socket needs
// write permission on it, so only its owner (the master's user) and root
// can reach it.
const adminMode = 0o600

// listenAdmin creates the admin socket at path with mode adminMode and no
// moment at which it is wider. bind(2) creates the socket's file with the
// mode of the socket's inode less the umask, so the mode is set with
// fchmod(2) on the unbound socket (ListenConfig.Control runs between
// socket(2) and bind(2)): the file appears 0600. Listening first and
// chmod-ing after would leave it 0777 &^ umask until the chmod, long enough
// for a local user to connect; a umask around the bind would change the
// mode of every file the master's other goroutines create meanwhile.
func listenAdmin(path string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = unix.Fchmod(int(fd), adminMode) }); cerr != nil {
			return cerr
		}
		return os.NewSyscallError("fchmod", err)
	}}
	ln, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	// What the kernel made of it: refuse to serve on a wider socket.
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %w", path, os.NewSyscallError("lstat", err))
	}
	if st.Mode&0o077 != 0 {
		ln.Close()
		return nil, fmt.Errorf("%s: created with mode %#o, want %#o", path, st.Mode&0o7777, adminMode)
	}
	return ln, nil
}

// adminMaxLine bounds what the master reads of a client: a command line.
const adminMaxLine = 4096

// adminPeerAllowed is whether a client of uid may use the admin socket: root
// and the master's own user. The socket's mode already keeps others out;
// this holds if the mode is widened (by hand, or a directory's ACL).
func adminPeerAllowed(uid uint32) bool {
	return uid == 0 || uid == uint32(os.Geteuid())
}

// peerCred is the identity of the process that connected c (SO_PEERCRED:
// as of its connect(2)).
func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket: %T", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if gerr != nil {
		return nil, os.NewSyscallError("getsockopt SO_PEERCRED", gerr)
	}
	return cred, nil
}

func (m *Master) serveAdmin(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cred, err := peerCred(c)
	if err != nil {
		m.log.Warn("admin socket: cannot tell who connected: closing", "err", err)
		return
	}
	if !adminPeerAllowed(cred.Uid) {
		// Refused before reading a byte of what the client sent.
		m.log.Warn("admin socket: refused a client that is neither root nor the master's user",
			"peer_uid", cred.Uid, "peer_pid", cred.Pid, "master_uid", os.Geteuid())
		writeAdminError(c, fmt.Errorf("admin socket: refused: uid %d is neither root nor the master's uid %d", cred.Uid, os.Geteuid()))
		// The client writes its command before it reads: closing now
		// would fail that write (EPIPE) before it sees the answer. So
		// end our side, and discard what it sends until it closes, at
		// most adminMaxLine bytes and a second.
		if uc, ok := c.(*net.UnixConn); ok {
			_ = uc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, adminMaxLine))
		return
	}
	line, err := bufio.NewReader(io.LimitReader(c, adminMaxLine)).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	if m.serveScale(c, line) { // scale.go: answered when the count is reached
		return
	}
	reply := make(chan adminReply, 1)
	m.post(evAdmin{cmd: strings.TrimSpace(line), reply: reply})
	select {
	case r := <-reply:
		if r.err != nil {
			writeAdminError(c, r.err)
			return
		}
		_, _ = c.Write(append(r.body, '\n'))
	case <-time.After(5 * time.Second):
	}
}

// writeAdminError answers with {"error": ...}, which QueryStatus returns as
// its error.
func writeAdminError(c net.Conn, e error) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{e.Error()})
	_, _ = c.Write(append(body, '\n'))
}

func (m *Master) onAdmin(cmd string) adminReply {
	switch cmd {
	case "status":
		b, err := json.Marshal(m.status())
		return adminReply{body: b, err: err}
	case "upgrade":
		if _, err := m.requestUpgrade("admin socket"); err != nil {
			return adminReply{err: err}
		}
		b, err := json.Marshal(m.upgrade)
		return adminReply{body: b, err: err}
	}
	return adminReply{err: fmt.Errorf("unknown command %q", cmd)}
}

func (m *Master) status() Status {
	now := m.env.now()
	st := Status{
		PID: os.Getpid(), Mode: m.cfg.Mode, Proto: m.cfg.Proto, Addrs: m.ls.addrs, Metrics: m.MetricsAddr(),
		Desired: m.desired, Running: m.readySlots(), Reloads: m.reloads, Uptime: now.Sub(m.started).Seconds(), Stopping: m.stopping,
		Version: m.version, Exe: m.exe,
	}
	if m.upgrade != nil {
		u := *m.upgrade
		st.Upgrade = &u
	}
	for _, p := range m.procs {
		ws := WorkerStatus{Slot: p.slot, PID: p.pid, Generation: p.gen, State: p.state.String(),
			Uptime: now.Sub(p.started).Seconds()}
		if s := m.slots[p.slot]; s != nil {
			ws.Restarts = s.restarts
		}
		if p.retired != nil {
			ws.State = "retiring"
		}
		st.Workers = append(st.Workers, ws)
	}
	sort.Slice(st.Workers, func(i, j int) bool {
		a, b := st.Workers[i], st.Workers[j]
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.Generation < b.Generation
	})
	return st
}

// QueryStatus asks the master listening on the admin socket for its Status.
func QueryStatus(path string) (Status, error) {
	var st Status
	err := adminCommand(path, "status", 5*time.Second, &st)
	return st, err
}

// RequestUpgrade asks the master listening on the admin socket to upgrade
// its binary in place; it answers at once with the upgrade's record (state
// checking, or an error: one is in progress, the master is stopping). Its
// progress shows in QueryStatus's Upgrade, with the same Seq.
func RequestUpgrade(path string) (UpgradeStatus, error) {
	var u UpgradeStatus
	err := adminCommand(path, "upgrade", 5*time.Second, &u)
	return u, err
}

// adminCommand sends one command line and decodes the JSON answer into v.
func adminCommand(path, cmd string, timeout time.Duration, v any) error {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("admin socket: bad reply: %w", err)
	}
	return nil
}
