package testkit

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Program is a prefork program (a main built on app.Main) running
// `serve` for a test.
type Program struct {
	Addr string // the first listen address, as bound
	PID  int
	mu   sync.Mutex
	logs []string
}

// Build compiles the main package pkg (an import path) into the test's temp
// dir, with the race detector when the tests have it, and returns the
// binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Serve runs `bin serve --listen 127.0.0.1:0 --metrics-listen ” --log-format
// json args...`, waits until every worker is ready, and stops it (TERM, by
// its PID) when the test ends.
func Serve(t testing.TB, bin string, args ...string) *Program {
	t.Helper()
	full := append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, full...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Program{PID: cmd.Process.Pid}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			switch m["msg"] {
			case "master started":
				if as, ok := m["addrs"].([]any); ok && len(as) > 0 {
					addr <- as[0].(string)
				}
			case "all workers ready":
				ready <- struct{}{}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = unix.Kill(p.PID, unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = unix.Kill(p.PID, unix.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(bin), p.Logs())
		}
	})
	deadline := time.After(30 * time.Second)
	for gotAddr, gotReady := false, false; !gotAddr || !gotReady; {
		select {
		case p.Addr = <-addr:
			gotAddr = true
		case <-ready:
			gotReady = true
		case <-exited:
			t.Fatalf("%s exited at start:\n%s", bin, p.Logs())
		case <-deadline:
			t.Fatalf("%s not ready within 30s:\n%s", bin, p.Logs())
		}
	}
	if p.Addr == "" {
		t.Fatalf("%s did not log its address", bin)
	}
	return p
}

// Logs returns what the program wrote to stderr so far.
func (p *Program) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}
