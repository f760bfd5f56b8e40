package master_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testenv"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/master"
)

// secbitNoSetuidFixup is SECBIT_NO_SETUID_FIXUP (linux/securebits.h): with
// it, setuid(2) from root keeps the permitted, effective and ambient
// capabilities.
const secbitNoSetuidFixup = 1 << 2

// taintedGroups are the supplementary groups the tests' master runs with
// (root, adm, sudo): none of them may reach a worker of another --user.
var taintedGroups = []int{0, 4, 27}

// taintThread locks the calling goroutine to its thread, never to be
// unlocked (the runtime ends the thread with the goroutine, so nothing else
// inherits this), and gives the thread what a careless service manager might
// give a master: root's supplementary groups taintedGroups,
// CAP_NET_BIND_SERVICE inheritable and ambient, and SECBIT_NO_SETUID_FIXUP.
// These are per thread, and startServer forks the master from this one.
// Without them the identity checks below would pass for a plain root master
// whatever the drop did.
func taintThread(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := unix.Setgroups(taintedGroups); err != nil { // the raw syscall: this thread only
		t.Fatal(os.NewSyscallError("setgroups", err))
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(os.NewSyscallError("capget", err))
	}
	data[0].Inheritable |= 1 << unix.CAP_NET_BIND_SERVICE
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatal(os.NewSyscallError("capset", err))
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_BIND_SERVICE, 0, 0); err != nil {
		t.Fatal(os.NewSyscallError("prctl PR_CAP_AMBIENT_RAISE", err))
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitNoSetuidFixup, 0, 0, 0); err != nil {
		t.Fatal(os.NewSyscallError("prctl PR_SET_SECUREBITS", err))
	}
}

// procStatus reads the "Name:\tvalue" lines of a /proc/.../status file.
func procStatus(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out, nil
}

// idSet parses a Groups: value into a sorted list.
func idSet(t testing.TB, s string) []uint32 {
	t.Helper()
	var out []uint32
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatalf("Groups: %q: %v", s, err)
		}
		out = append(out, uint32(v))
	}
	slices.Sort(out)
	return out
}

// identity is who a worker must be.
type identity struct {
	uid, gid uint32
	// may are the supplementary groups the worker may have: the user's
	// groups in the group database and its gid; must are those it has to
	// have (the user's, less its own primary group and the gid).
	may, must []uint32
}

// identityOf is the identity of workers run as uid (a user in the database)
// with gid.
func identityOf(t testing.TB, uid, gid uint32) identity {
	t.Helper()
	u, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	id := identity{uid: uid, gid: gid, may: []uint32{gid}}
	for _, s := range ids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		id.may = append(id.may, uint32(g))
		if s != u.Gid && uint32(g) != gid {
			id.must = append(id.must, uint32(g))
		}
	}
	slices.Sort(id.may)
	id.may = slices.Compact(id.may)
	return id
}

// checkWorkerIdentity checks every thread of every worker of s against id
// in /proc/PID/task/TID/status: the four uids and gids (real, effective,
// saved, filesystem) are id's, the supplementary groups id's and none of
// the master's, no capability in the inheritable, permitted, effective or
// ambient set, and no_new_privs (no execve can make it root again: not
// setuid-root binaries, not file capabilities; with the saved uid not 0,
// setuid(0) fails too). It returns the pids it checked.
func checkWorkerIdentity(t *testing.T, s *server, workers int, id identity, when string) []int {
	t.Helper()
	pids := s.workerPIDs()
	if len(pids) != workers {
		t.Fatalf("%s: workers: got %d (%v), want %d", when, len(pids), pids, workers)
	}
	wantUid := strings.Repeat(strconv.Itoa(int(id.uid))+" ", 4)
	wantGid := strings.Repeat(strconv.Itoa(int(id.gid))+" ", 4)
	const noCaps = "0000000000000000"
	for _, pid := range pids {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("%s: worker %d: no threads (%v)", when, pid, err)
		}
		// problem → the threads that have it, so a wrong worker is one
		// error per problem rather than one per thread.
		problems := map[string][]string{}
		var order []string
		problem := func(tid, format string, args ...any) {
			p := fmt.Sprintf(format, args...)
			if problems[p] == nil {
				order = append(order, p)
			}
			problems[p] = append(problems[p], tid)
		}
		for i, path := range tasks {
			st, err := procStatus(path)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if i == 0 {
				t.Logf("%s: worker %d (%d threads): Uid: %s | Gid: %s | Groups: %s | CapInh: %s CapPrm: %s CapEff: %s CapAmb: %s | NoNewPrivs: %s",
					when, pid, len(tasks), st["Uid"], st["Gid"], st["Groups"], st["CapInh"], st["CapPrm"], st["CapEff"], st["CapAmb"], st["NoNewPrivs"])
			}
			tid := filepath.Base(filepath.Dir(path))
			if got, want := st["Uid"], strings.TrimSpace(wantUid); got != want {
				problem(tid, "Uid: got %q, want %q", got, want)
			}
			if got, want := st["Gid"], strings.TrimSpace(wantGid); got != want {
				problem(tid, "Gid: got %q, want %q", got, want)
			}
			groups := idSet(t, st["Groups"])
			for _, g := range groups {
				if !slices.Contains(id.may, g) {
					problem(tid, "Groups: got %v, which has %d: not one of the user's groups %v", groups, g, id.may)
				}
			}
			for _, g := range id.must {
				if !slices.Contains(groups, g) {
					problem(tid, "Groups: got %v, want it to have the user's group %d", groups, g)
				}
			}
			for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
				if got := st[set]; got != noCaps {
					problem(tid, "%s: got %s, want %s", set, got, noCaps)
				}
			}
			if got := st["NoNewPrivs"]; got != "1" {
				problem(tid, "NoNewPrivs: got %q, want 1", got)
			}
		}
		for _, p := range order {
			t.Errorf("%s: worker %d, threads %v of %d: %s", when, pid, problems[p], len(tasks), p)
		}
	}
	return pids
}

// checkMasterTainted checks that the master has what taintThread gave it, so
// that checkWorkerIdentity is not vacuous: root's groups on every thread, the
// capability inheritable and ambient on every thread but the spawner's
// (confineThread cleared it there, and that thread may be the main one).
func checkMasterTainted(t *testing.T, pid int) {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("master %d: no threads (%v)", pid, err)
	}
	withCaps := 0
	for _, path := range tasks {
		st, err := procStatus(path)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(taintedGroups)
		slices.Sort(want)
		var got []int
		for _, g := range idSet(t, st["Groups"]) {
			got = append(got, int(g))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("master %d, %s: Groups: got %v, want %v (taintThread did not reach it)", pid, path, got, want)
		}
		if st["CapInh"] == "0000000000000400" && st["CapAmb"] == "0000000000000400" {
			withCaps++
		}
	}
	t.Logf("master %d: Groups %v on its %d threads, CAP_NET_BIND_SERVICE inheritable and ambient on %d of them", pid, taintedGroups, len(tasks), withCaps)
	if withCaps < len(tasks)-1 {
		t.Fatalf("master %d: CAP_NET_BIND_SERVICE inheritable and ambient on %d of %d threads, want all but the spawner's (taintThread did not reach it)", pid, withCaps, len(tasks))
	}
}

// TestWorkerIdentity: started as root with --user (and --group, names or
// numbers), every thread of every worker is that user and nothing more — at
// start, after a HUP reload, and after a crashed worker is replaced. The
// master is started with root's supplementary groups, an inheritable and
// ambient capability and SECBIT_NO_SETUID_FIXUP (taintThread), so each check
// has something to catch.
func TestWorkerIdentity(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root: only a root master can start workers as another user")
	}
	users, err := user.LookupGroup("users")
	if err != nil {
		testenv.Skip(t, "no group \"users\" in the group database: %v", err)
	}
	usersGid, err := strconv.ParseUint(users.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	const nobody = 65534 // nobody, and its primary group nogroup
	tests := []struct {
		name     string
		args     []string
		uid, gid uint32
	}{
		{"user by name", []string{"--user", "nobody"}, nobody, nobody},
		{"user and group by name", []string{"--user", "nobody", "--group", "nogroup"}, nobody, nobody},
		{"user and group by id", []string{"--user", "65534", "--group", "65534"}, nobody, nobody},
		{"another group by id", []string{"--user", "65534", "--group", users.Gid}, nobody, uint32(usersGid)},
	}
	const workers = 2
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			taintThread(t)
			id := identityOf(t, tc.uid, tc.gid)
			s := startServer(t, workers, tc.args...)

			checkMasterTainted(t, s.pid)

			first := checkWorkerIdentity(t, s, workers, id, "at start")
			if err := get(s.addr); err != nil {
				t.Fatal(err)
			}

			s.signal(unix.SIGHUP)
			testkit.WaitFor(t, "the reload to replace every worker", 30*time.Second, func() bool {
				st := s.status()
				if st.Reloads != 1 || len(st.Workers) != workers {
					return false
				}
				for _, w := range st.Workers {
					if w.State != "ready" || slices.Contains(first, w.PID) {
						return false
					}
				}
				return len(s.workerPIDs()) == workers
			})
			checkWorkerIdentity(t, s, workers, id, "after HUP")

			victim := s.readyWorkers()[0]
			if err := unix.Kill(victim, unix.SIGKILL); err != nil {
				t.Fatal(os.NewSyscallError("kill", err))
			}
			testkit.WaitFor(t, "slot 0 to be replaced after its crash", 30*time.Second, func() bool {
				pid, ok := s.readyWorkers()[0]
				return ok && pid != victim && len(s.workerPIDs()) == workers
			})
			checkWorkerIdentity(t, s, workers, id, "after a crash restart")
			if err := get(s.addr); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// runStatus runs `prefork status` against the admin socket as uid/gid and
// returns its exit code and output.
func runStatus(t *testing.T, admin string, uid, gid uint32) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, "status", "--admin-socket", admin)
	cmd.Dir = "/"
	// A -race binary sleeps a second at exit, to let its reports out.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	}
	done := make(chan struct{})
	timer := time.AfterFunc(20*time.Second, func() {
		select {
		case <-done:
		default:
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		}
	})
	out, err := cmd.CombinedOutput()
	close(done)
	timer.Stop()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("prefork status as uid %d: %v\n%s", uid, err, out)
	return -1, ""
}

// TestAdminSocket: the admin socket is created 0600 (only the master's user
// and root can connect(2) at all) and, should its mode be widened, still
// answers only root and the master's own user: SO_PEERCRED of everyone else
// is refused with an error, and logged. Clients are `prefork status` run as
// other uids. The rows run in order.
func TestAdminSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root: the clients run as other users")
	}
	t.Run("root master", func(t *testing.T) {
		s := startServer(t, 1)
		checkAdminSocketFile(t, s.admin, 0)
		// nobody must be able to reach the socket's file for connect(2)'s
		// answer to be about the socket: t.TempDir's parent is 0700.
		if err := os.Chmod(filepath.Dir(filepath.Dir(s.admin)), 0o711); err != nil {
			t.Fatal(err)
		}
		runClients(t, s.admin, []adminClient{
			{name: "nobody, socket 0600", mode: 0o600, uid: 65534, gid: 65534, code: 1, output: "permission denied"},
			{name: "nobody, socket widened to 0666", mode: 0o666, uid: 65534, gid: 65534, code: 1,
				output: "refused: uid 65534 is neither root nor the master's uid 0", refused: true},
			{name: "root", mode: 0o666, uid: 0, gid: 0, code: 0, output: "master pid " + strconv.Itoa(s.pid)},
		}, func(uid uint32) bool {
			for _, m := range s.logsWith("admin socket: refused a client that is neither root nor the master's user") {
				if m["peer_uid"] == float64(uid) {
					return true
				}
			}
			return false
		})
		if got := s.status(); got.PID != s.pid {
			t.Errorf("status after the refusals: got pid %d, want %d", got.PID, s.pid)
		}
	})
	t.Run("master as nobody", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		admin := filepath.Join(dir, "admin.sock")
		cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--workers", "1",
			"--log-format", "json", "--admin-socket", admin)
		cmd.Dir = "/"
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0") // see runStatus
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		logs := startTool(t, cmd)
		testkit.WaitFor(t, "the admin socket", 20*time.Second, func() bool {
			_, err := os.Lstat(admin)
			return err == nil
		})
		checkAdminSocketFile(t, admin, 65534)
		const other = 65533 // neither root nor the master's user
		runClients(t, admin, []adminClient{
			{name: "the master's user", mode: 0o600, uid: 65534, gid: 65534, code: 0, output: "master pid " + strconv.Itoa(cmd.Process.Pid)},
			{name: "another uid, socket widened to 0666", mode: 0o666, uid: other, gid: other, code: 1,
				output: "refused: uid 65533 is neither root nor the master's uid 65534", refused: true},
			{name: "root", mode: 0o666, uid: 0, gid: 0, code: 0, output: "master pid " + strconv.Itoa(cmd.Process.Pid)},
		}, func(uid uint32) bool {
			return strings.Contains(logs.String(), `"peer_uid":`+strconv.Itoa(int(uid)))
		})
	})
}

// adminClient is a row of TestAdminSocket: `prefork status` run as uid/gid.
type adminClient struct {
	name     string
	mode     os.FileMode // the socket's mode for this client (set by the test)
	uid, gid uint32
	code     int
	output   string // the output mentions this
	refused  bool   // the master logs a refusal of uid
}

// runClients runs `prefork status` for each row in order, after setting the
// socket's mode; loggedRefusal reports whether the master logged refusing
// uid.
func runClients(t *testing.T, admin string, clients []adminClient, loggedRefusal func(uid uint32) bool) {
	t.Helper()
	for _, c := range clients {
		if err := os.Chmod(admin, c.mode); err != nil {
			t.Fatal(err)
		}
		code, out := runStatus(t, admin, c.uid, c.gid)
		t.Logf("%s: exit %d: %s", c.name, code, strings.TrimSpace(out))
		if code != c.code {
			t.Errorf("%s: exit code: got %d, want %d\n%s", c.name, code, c.code, out)
		}
		if !strings.Contains(out, c.output) {
			t.Errorf("%s: output: got %q, want it to mention %q", c.name, out, c.output)
		}
		if c.refused {
			testkit.WaitFor(t, fmt.Sprintf("%s: the master to log the refusal of uid %d", c.name, c.uid), 10*time.Second,
				func() bool { return loggedRefusal(c.uid) })
		} else if loggedRefusal(c.uid) {
			t.Errorf("%s: the master logged refusing uid %d, which it must accept", c.name, c.uid)
		}
	}
}

// checkAdminSocketFile: a socket, mode 0600, owned by uid.
func checkAdminSocketFile(t *testing.T, path string, uid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(os.NewSyscallError("lstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("%s: type %#o, want a socket", path, st.Mode&unix.S_IFMT)
	}
	if got := st.Mode & 0o7777; got != 0o600 {
		t.Errorf("%s: mode: got %#o, want 0600", path, got)
	}
	if st.Uid != uid {
		t.Errorf("%s: owner: got uid %d, want %d", path, st.Uid, uid)
	}
}

// TestMetricsLoopbackByDefault: without --metrics-listen, /metrics, /healthz
// and /readyz are on 127.0.0.1 only, out of reach of the host's other
// addresses.
func TestMetricsLoopbackByDefault(t *testing.T) {
	host, _, err := net.SplitHostPort(master.DefaultMetricsListen)
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" {
		t.Errorf("DefaultMetricsListen: got host %q (%s), want 127.0.0.1", host, master.DefaultMetricsListen)
	}
	s := startServer(t, 1, defaultMetrics)
	host, port, err := net.SplitHostPort(s.metricsAddr)
	if err != nil {
		t.Fatalf("metrics address %q: %v", s.metricsAddr, err)
	}
	if host != "127.0.0.1" {
		t.Errorf("metrics bound to %s: got host %q, want 127.0.0.1", s.metricsAddr, host)
	}
	if code, body := httpGet(t, "http://"+s.metricsAddr+"/healthz"); code != 200 {
		t.Errorf("GET /healthz: got %d %q, want 200", code, body)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		tried++
		target := net.JoinHostPort(ipn.IP.String(), port)
		c, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err == nil {
			c.Close()
			t.Errorf("metrics reachable at %s: got a connection, want it refused", target)
		} else if !errors.Is(err, unix.ECONNREFUSED) {
			t.Errorf("dial %s: got %v, want connection refused", target, err)
		}
	}
	t.Logf("metrics on %s; refused on the %d non-loopback addresses of this host", s.metricsAddr, tried)
}
