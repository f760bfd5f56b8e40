package loop_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/reuseport"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv("LOOP_TEST_EMFILE_CHILD") == "1" {
		emfileChild()
		return
	}
	os.Exit(m.Run())
}

// emfileChild serves echo with a tiny fd limit, prints its address, and when
// stdin closes prints its stats and exits.
func emfileChild() {
	fd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	addr, _ := reuseport.BoundAddr(fd)
	l, err := loop.New(loop.Config{Handler: echo.New()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if err := l.AddListener(fd, false); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	// Leave room for 5 more fds: the limit is on fd numbers, and new fds take
	// the lowest free numbers, so count free numbers from the bottom.
	open := map[int]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscan(e.Name(), &n); err == nil {
			open[n] = true
		}
	}
	lim, free := uint64(0), 0
	for ; free < 5; lim++ {
		if !open[int(lim)] {
			free++
		}
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		l.Post(func() {
			s := l.Stats()
			fmt.Printf("stats shed=%d wakeups=%d accepted=%d\n", s.AcceptShed, s.Wakeups, s.Accepted)
			l.Stop()
		})
	}()
	fmt.Println("addr", addr)
	if err := l.Run(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
}

// TestEMFILE runs a loop with a tiny fd limit in a child process: connections
// past the limit are accepted and closed (the client sees EOF, not a hang),
// the loop does not spin while the limit holds, and once connections close it
// serves again.
func TestEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOOP_TEST_EMFILE_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("child printed nothing")
	}
	first := lines.Text()
	addr, ok := strings.CutPrefix(first, "addr ")
	if !ok {
		t.Fatalf("child: %s", first)
	}

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	shed := 0
	for i := 0; i < 20; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
		if err == nil {
			held = append(held, c)
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection %d hangs instead of being shed", i)
		}
		shed++
		c.Close()
	}
	if shed == 0 || len(held) == 0 {
		t.Fatalf("held %d, shed %d: want both > 0", len(held), shed)
	}
	// Free the fds; the loop must serve again.
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("y"))
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
		c.Close()
		if err == nil && buf[0] == 'y' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop does not serve after fds were freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // the server closes our fds asynchronously
	}
	stdin.Close()
	if !lines.Scan() {
		t.Fatal("child printed no stats")
	}
	var sh, wakeups, accepted int
	if _, err := fmt.Sscanf(lines.Text(), "stats shed=%d wakeups=%d accepted=%d", &sh, &wakeups, &accepted); err != nil {
		t.Fatalf("child: %q: %v", lines.Text(), err)
	}
	if sh < shed {
		t.Errorf("child shed %d connections, client saw %d closed", sh, shed)
	}
	// A spinning loop would wake up millions of times; a few per connection is right.
	if wakeups > 1000 {
		t.Errorf("wake-ups: got %d, want < 1000 (the loop spins on EMFILE)", wakeups)
	}
}
