package master_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/master"
)

// upgradeBins builds the test binary as the versions an upgrade test
// swaps in: "v1", "v2" (buildinfo.Version set with -ldflags -X), "broken"
// (version v3-broken, whose http workers exit at start while its master
// works) and "hang" (v3-hang, whose workers never get ready), once per test
// binary run.
var upgradeBins = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "prefork-upgrade-bins-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	const v = "-X github.com/prefork/prefork/buildinfo.Version="
	builds := map[string]string{
		"v1":     v + "v1",
		"v2":     v + "v2",
		"broken": v + "v3-broken -X main.brokenWorkers=yes",
		"hang":   v + "v3-hang -X main.brokenWorkers=hang",
	}
	out := map[string]string{}
	errs := make(chan error, len(builds))
	var mu sync.Mutex
	for name, ldflags := range builds {
		go func() {
			path := filepath.Join(dir, name)
			args := []string{"build", "-o", path, "-ldflags", ldflags}
			if raceEnabled {
				args = append(args, "-race")
			}
			b, err := exec.Command("go", append(args, "github.com/prefork/prefork/internal/testbin")...).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("building %s: %v\n%s", name, err, b)
				return
			}
			mu.Lock()
			out[name] = path
			mu.Unlock()
			errs <- nil
		}()
	}
	for range builds {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	return out, nil
})

// install puts src at dst the way a deploy does: a copy next to it, renamed
// over it (the running binary's inode lives on, "(deleted)").
func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	installBytes(t, b, 0o755, dst)
}

func installBytes(t *testing.T, b []byte, mode os.FileMode, dst string) {
	t.Helper()
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// serverHeaders makes n requests on new connections and counts the Server
// headers of the answers.
func serverHeaders(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		c.Close()
		got[resp.Header.Get("Server")]++
	}
	return got
}

// upgradeSetup returns the upgrade test binaries and the path a test's
// master runs from (in a directory of its own that --user workers may
// enter), with v1 installed there.
func upgradeSetup(t *testing.T) (bins map[string]string, exe string) {
	t.Helper()
	bins, err := upgradeBins()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "prefork")
	install(t, bins["v1"], exe)
	return bins, exe
}

// runsFile reports whether /proc/PID/exe is the file at path now.
func runsFile(t *testing.T, pid int, path string) bool {
	t.Helper()
	a, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatalf("worker %d: %v", pid, err)
	}
	b, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(a, b)
}

// waitUpgrade waits for upgrade seq to finish and returns the status then.
func waitUpgrade(t *testing.T, s *server, seq int) master.Status {
	t.Helper()
	var st master.Status
	testkit.WaitFor(t, fmt.Sprintf("upgrade #%d to finish", seq), 60*time.Second, func() bool {
		var err error
		st, err = master.QueryStatus(s.admin)
		return err == nil && st.Upgrade != nil && st.Upgrade.Seq == seq && st.Upgrade.Finished()
	})
	return st
}

// TestUpgradeInPlace: under a steady load of new and keep-alive connections,
// the master upgrades to a new binary keeping its pid (prefork upgrade), then
// refuses two broken binaries before it executes them (USR2), rolls back from
// one whose workers cannot start, and upgrades again: 0 failed requests.
func TestUpgradeInPlace(t *testing.T) {
	bins, exe := upgradeSetup(t)
	s := startServerBin(t, exe, 3)
	if got := serverHeaders(t, s.addr, 10); got["prefork/v1"] != 10 {
		t.Fatalf("before the upgrade: Server headers %v, want prefork/v1 only", got)
	}
	newConns := startLoad(t, s.addr, 3)
	keepAlive := startKeepAliveLoad(t, s.addr, 3)
	newConns.waitRequests(t, 100)
	keepAlive.waitRequests(t, 100)

	upgrade := func(wantOK bool) string {
		t.Helper()
		out, err := exec.Command(exe, "upgrade", "--pidfile", s.pidfile).CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("prefork upgrade: err %v, want success %v; output:\n%s", err, wantOK, out)
		}
		return string(out)
	}
	workers := 3
	checkAll := func(version string, seq int, state string) master.Status {
		t.Helper()
		st := waitUpgrade(t, s, seq)
		if st.PID != s.pid {
			t.Errorf("master pid after upgrade #%d: got %d, want %d (kept)", seq, st.PID, s.pid)
		}
		if st.Upgrade.State != state || st.Version != version {
			t.Errorf("upgrade #%d: state %q, version %q; want %q, %q (%+v)", seq, st.Upgrade.State, st.Version, state, version, st.Upgrade)
		}
		ready := s.waitReady(workers)
		newConns.waitRequests(t, 50)
		keepAlive.waitRequests(t, 50)
		if got := serverHeaders(t, s.addr, 30); got["prefork/"+version] != 30 {
			t.Errorf("after upgrade #%d: Server headers %v, want prefork/%s only", seq, got, version)
		}
		for slot, pid := range ready {
			if state == master.UpgradeDone && !runsFile(t, pid, exe) {
				t.Errorf("after upgrade #%d: slot %d's worker %d does not run the binary now at %s", seq, slot, pid, exe)
			}
		}
		return s.status() // the old workers drained
	}

	// 1. v1 → v2.
	install(t, bins["v2"], exe)
	out := upgrade(true)
	if !strings.Contains(out, "done") || !strings.Contains(out, "v2") {
		t.Errorf("prefork upgrade said:\n%s", out)
	}
	st := checkAll("v2", 1, master.UpgradeDone)
	for _, w := range st.Workers {
		if w.Generation != 2 {
			t.Errorf("slot %d: generation %d, want 2 (replaced once)", w.Slot, w.Generation)
		}
	}
	if !runsFile(t, s.pid, exe) {
		t.Errorf("the master does not run the binary now at %s", exe)
	}
	v2Workers := s.readyWorkers()

	// 2. Binaries the check refuses, by USR2: nothing changes.
	for i, bad := range []struct {
		name string
		body []byte
		mode os.FileMode
	}{
		{"exits at once", []byte("#!/bin/sh\necho 'no such flag' >&2\nexit 1\n"), 0o755},
		{"not executable", []byte("#!/bin/sh\nexit 0\n"), 0o644},
		{"not a prefork binary", []byte("#!/bin/sh\nexit 0\n"), 0o755},
	} {
		installBytes(t, bad.body, bad.mode, exe)
		s.signal(unix.SIGUSR2)
		st := checkAll("v2", 2+i, master.UpgradeFailed)
		if st.Upgrade.Error == "" {
			t.Errorf("%s: the failed upgrade gives no reason", bad.name)
		}
		t.Logf("%s: %s", bad.name, st.Upgrade.Error)
		if got := s.readyWorkers(); fmt.Sprint(got) != fmt.Sprint(v2Workers) {
			t.Errorf("%s: workers %v, want the same as before %v", bad.name, got, v2Workers)
		}
	}

	// 3. A binary whose master starts but whose workers exit: executed,
	// and rolled back to v2.
	install(t, bins["broken"], exe)
	out = upgrade(false)
	if !strings.Contains(out, "rolled back") {
		t.Errorf("prefork upgrade said:\n%s", out)
	}
	st = checkAll("v2", 5, master.UpgradeRolledBack)
	if !strings.Contains(st.Upgrade.Error, "before it was ready") || st.Upgrade.To != "v3-broken" {
		t.Errorf("rollback: %+v", st.Upgrade)
	}
	if got := s.readyWorkers(); fmt.Sprint(got) != fmt.Sprint(v2Workers) {
		t.Errorf("after the rollback: workers %v, want the v2 ones %v", got, v2Workers)
	}

	// 4. Upgrading still works after all that (the fourth exec of the
	// master's image, the workers still its children).
	install(t, bins["v1"], exe)
	upgrade(true)
	checkAll("v1", 6, master.UpgradeDone)

	// 5. USR2 right behind a scale-down and a HUP: it waits for the
	// reload, and the retiring slot and the draining workers cross the
	// exec with their state.
	install(t, bins["v2"], exe)
	s.signal(unix.SIGTTOU)
	s.signal(unix.SIGHUP)
	s.signal(unix.SIGUSR2)
	workers = 2
	if st := checkAll("v2", 7, master.UpgradeDone); st.Reloads != 1 || st.Desired != 2 {
		t.Errorf("after TTOU, HUP, USR2: %d reloads, %d desired; want 1, 2", st.Reloads, st.Desired)
	}

	// 6. A HUP while the new binary's check runs: the exec waits for
	// that reload (a READY the old image read would be lost in it).
	install(t, bins["v1"], exe)
	s.signal(unix.SIGUSR2)
	s.signal(unix.SIGHUP)
	if st := checkAll("v1", 8, master.UpgradeDone); st.Reloads != 2 {
		t.Errorf("after USR2, HUP: %d reloads, want 2", st.Reloads)
	}

	newConns.check(t)
	keepAlive.check(t)
	for result, want := range map[string]float64{"ok": 4, "check_failed": 3, "rolled_back": 1, "exec_failed": 0} {
		if got := s.metric("prefork_upgrades_total", `result="`+result+`"`); got != want {
			t.Errorf("prefork_upgrades_total{result=%q}: got %v, want %v", result, got, want)
		}
	}
	if got := s.metric("prefork_build_info", `version="v1"`); got != 1 {
		t.Errorf("prefork_build_info{version=\"v1\"}: got %v, want 1", got)
	}
	s.signal(unix.SIGTERM)
	if code := s.waitExit(30 * time.Second); code != 0 {
		t.Errorf("exit code after a stop: %d", code)
	}
	if _, err := os.Stat(s.admin); !os.IsNotExist(err) {
		t.Errorf("admin socket left after the stop: %v", err)
	}
}

// TestUpgradeModes: an upgrade under load in shared and handoff mode, whose
// sockets (the shared listener; the listener the master's acceptor
// accepts on) cross the exec too.
func TestUpgradeModes(t *testing.T) {
	for _, mode := range []string{"shared", "handoff"} {
		t.Run(mode, func(t *testing.T) {
			bins, exe := upgradeSetup(t)
			s := startServerBin(t, exe, 2, "--mode", mode)
			fdsBefore := fdCount(t, s.pid)
			newConns := startLoad(t, s.addr, 3)
			keepAlive := startKeepAliveLoad(t, s.addr, 3)
			newConns.waitRequests(t, 100)
			install(t, bins["v2"], exe)
			s.signal(unix.SIGUSR2)
			st := waitUpgrade(t, s, 1)
			if st.Upgrade.State != master.UpgradeDone || st.Version != "v2" || st.PID != s.pid {
				t.Fatalf("upgrade: %+v, version %s, pid %d (want done, v2, %d)", st.Upgrade, st.Version, st.PID, s.pid)
			}
			s.waitReady(2)
			newConns.waitRequests(t, 100)
			keepAlive.waitRequests(t, 100)
			if got := serverHeaders(t, s.addr, 20); got["prefork/v2"] != 20 {
				t.Errorf("Server headers %v, want prefork/v2 only", got)
			}
			newConns.check(t)
			keepAlive.check(t)
			// Nothing of the old image stays open in the new one: the same
			// fds, once the load's connections and the old workers' control
			// sockets are gone.
			var fdsAfter int
			testkit.WaitFor(t, "the master's fd count back to what it was", 10*time.Second, func() bool {
				fdsAfter = fdCount(t, s.pid)
				return fdsAfter == fdsBefore
			})
		})
	}
}

// TestUpgradeNotify: systemd hears RELOADING=1 with MONOTONIC_USEC when an
// upgrade starts and READY=1 with a STATUS= naming the new version when
// every worker runs it, from the same pid (the MAINPID systemd knows).
func TestUpgradeNotify(t *testing.T) {
	bins, exe := upgradeSetup(t)
	ns := newNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", ns.path)
	s := startServerBin(t, exe, 2)
	if m := ns.next(t, "READY=1"); !strings.Contains(m, "prefork v1") {
		t.Errorf("READY=1 at start: STATUS does not name v1: %q", m)
	}
	install(t, bins["v2"], exe)
	s.signal(unix.SIGUSR2)
	m := ns.next(t, "RELOADING=1")
	if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(m) {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	if m := ns.next(t, "READY=1"); !strings.Contains(m, "STATUS=serving: 2/2 workers ready") || !strings.Contains(m, "prefork v2") {
		t.Errorf("READY=1 after the upgrade: %q, want a STATUS naming v2", m)
	}
	if st := waitUpgrade(t, s, 1); st.Upgrade.State != master.UpgradeDone || st.PID != s.pid {
		t.Errorf("upgrade: %+v, pid %d", st.Upgrade, st.PID)
	}
}

// TestUpgradeRollbackNotReady: a new binary whose workers never say READY
// (hung at start) is rolled back once --worker-timeout has passed: the old
// workers serve throughout, 0 failed requests.
func TestUpgradeRollbackNotReady(t *testing.T) {
	bins, exe := upgradeSetup(t)
	s := startServerBin(t, exe, 2, "--worker-timeout", "2s")
	before := s.readyWorkers()
	newConns := startLoad(t, s.addr, 3)
	newConns.waitRequests(t, 100)
	install(t, bins["hang"], exe)
	s.signal(unix.SIGUSR2)
	st := waitUpgrade(t, s, 1)
	if st.Upgrade.State != master.UpgradeRolledBack || st.Version != "v1" || st.PID != s.pid {
		t.Fatalf("upgrade: %+v, version %s, pid %d; want rolled_back, v1, %d", st.Upgrade, st.Version, st.PID, s.pid)
	}
	if !strings.Contains(st.Upgrade.Error, "before it was ready") {
		t.Errorf("rollback reason: %q", st.Upgrade.Error)
	}
	s.waitReady(2)
	if got := s.readyWorkers(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("workers after the rollback: %v, want the first ones %v", got, before)
	}
	newConns.waitRequests(t, 100)
	if got := serverHeaders(t, s.addr, 10); got["prefork/v1"] != 10 {
		t.Errorf("Server headers %v, want prefork/v1 only", got)
	}
	newConns.check(t)
}

// fdCount is how many fds process pid has open.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
