package chaoskit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testenv"
	"github.com/prefork/prefork/internal/testkit"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "present", status: "Name:\tprefork\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t5\n", want: 1234 << 10},
		{name: "missing", status: "Name:\tkthreadd\nThreads:\t1\n", wantErr: true},
		{name: "no unit", status: "VmRSS:\t1234\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tc.status))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v; want %d (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name  string
		stage string
		err   error
		got   int
		want  string
	}{
		{"eof before", "read", io.ErrUnexpectedEOF, 0, "read: EOF before response"},
		{"eof mid", "read", io.EOF, 17, "read: EOF mid-response"},
		{"reset before", "read", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 0, "read: reset before response"},
		{"timeout", "read", timeout, 0, "read: timeout before response"},
		{"refused", "dial", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 0, "dial: refused"},
		{"no port", "dial", os.NewSyscallError("connect", syscall.EADDRNOTAVAIL), 0, "dial: no local port"},
		{"broken pipe", "write", os.NewSyscallError("write", syscall.EPIPE), 0, "write: broken pipe"},
		{"other", "write", errors.New("odd"), 0, "write: other"},
		{"bad response", "response", errors.New("status 500"), 90, "bad response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.stage, tc.err, tc.got); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	kill := Event{At: at(1000), What: "SIGKILL", PID: 7, Ports: map[uint16]bool{1001: true, 1002: true}, Exact: true}
	hup := Event{At: at(3000), What: "HUP", PID: 1}
	tests := []struct {
		name string
		f    Failure
		// want is the Summary count it lands in: killed, killed-reused,
		// other-reused, other-fresh, near-kill.
		want [5]int
	}{
		{"held by the killed worker, keep-alive", Failure{KeepAlive: true, Port: 1001, Dialed: at(500), At: at(1001), Nth: 3}, [5]int{1, 1, 0, 0, 0}},
		{"held by the killed worker, new", Failure{Port: 1002, Dialed: at(999), At: at(1002), Nth: 1}, [5]int{1, 0, 0, 0, 0}},
		{"port reused after the kill", Failure{Port: 1001, Dialed: at(1500), At: at(1600), Nth: 1}, [5]int{0, 0, 0, 1, 1}},
		{"failed before the kill", Failure{KeepAlive: true, Port: 1001, Dialed: at(100), At: at(900), Nth: 2}, [5]int{0, 0, 1, 0, 0}},
		{"another port near the kill", Failure{Port: 2000, Dialed: at(990), At: at(1010), Nth: 1}, [5]int{0, 0, 0, 1, 1}},
		{"dial failed across the kill", Failure{Dialed: at(990), At: at(1005), Nth: 1}, [5]int{0, 0, 0, 1, 1}},
		{"dial failed just before the kill", Failure{Dialed: at(990), At: at(995), Nth: 1}, [5]int{0, 0, 0, 1, 0}},
		{"dialed within a second after the kill", Failure{Port: 2001, Dialed: at(1900), At: at(2500), Nth: 1}, [5]int{0, 0, 0, 1, 1}},
		{"dialed over a second after the kill", Failure{Port: 2002, Dialed: at(2100), At: at(2500), Nth: 1}, [5]int{0, 0, 0, 1, 0}},
		{"keep-alive after a HUP", Failure{KeepAlive: true, Port: 3000, Dialed: at(2500), At: at(3100), Nth: 9}, [5]int{0, 0, 1, 0, 0}},
		{"first request far from the kill", Failure{KeepAlive: true, Port: 3001, Dialed: at(3050), At: at(3100), Nth: 1}, [5]int{0, 0, 0, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Load{failures: []Failure{tc.f}}
			l.requests.Store(1)
			l.failed.Store(1)
			s := Summarize(l, []Event{kill, hup})
			got := [5]int{s.Killed, s.KilledReused, s.OtherReused, s.OtherFresh, s.NearKill}
			if got != tc.want {
				t.Errorf("killed, killed-reused, other-reused, other-fresh, near-kill: got %v, want %v", got, tc.want)
			}
			if s.HeldByKilled != 2 || s.Signals["SIGKILL"] != 1 || s.Signals["HUP"] != 1 {
				t.Errorf("held %d, signals %v: want 2 and one SIGKILL, one HUP", s.HeldByKilled, s.Signals)
			}
		})
	}
}

// TestKillWorker: a child process holding one accepted connection is killed;
// the event names that connection's client port and not the one the test
// keeps, the client sees the connection end, the other stays usable.
func TestKillWorker(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		testenv.Skip(t, "no sleep(1): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accept := func() (client *net.TCPConn, server *net.TCPConn) {
		client = testkit.Dial(t, ln.Addr().String())
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return client, s.(*net.TCPConn)
	}
	victimClient, victimServer := accept()
	keptClient, keptServer := accept()

	f, err := victimServer.File() // a dup, blocking, without CLOEXEC once passed
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sleep, "60")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	victimServer.Close() // the child's copy is now the only one
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-waited
	})
	testkit.WaitFor(t, "the child to hold the connection", 5*time.Second, func() bool {
		ports, err := PeerPorts(cmd.Process.Pid, uint16(ln.Addr().(*net.TCPAddr).Port))
		return err == nil && len(ports) == 1
	})

	ch, err := New(os.Getpid(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ch.KillWorker(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	victimPort := uint16(victimClient.LocalAddr().(*net.TCPAddr).Port)
	keptPort := uint16(keptClient.LocalAddr().(*net.TCPAddr).Port)
	if !ev.Exact || len(ev.Ports) != 1 || !ev.Ports[victimPort] {
		t.Errorf("event: got ports %v exact %v; want {%d} exact", ev.Ports, ev.Exact, victimPort)
	}
	if ev.Ports[keptPort] {
		t.Errorf("the test's own connection (port %d) is in the event", keptPort)
	}
	werr := <-waited
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("child's end: got %v, want killed by SIGKILL", werr)
	}
	waited <- nil // for the cleanup
	if b, err := io.ReadAll(victimClient); err != nil || len(b) != 0 {
		t.Errorf("the killed child's connection: got %q, %v; want EOF", b, err)
	}
	if _, err := keptServer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(keptClient, make([]byte, 1)); err != nil {
		t.Errorf("the test's own connection after the kill: %v", err)
	}
	if got := ch.Events(); len(got) != 1 || got[0].What != "SIGKILL" || got[0].PID != cmd.Process.Pid {
		t.Errorf("events: got %+v, want the one SIGKILL", got)
	}
}

// TestLoad: against a net/http server every request succeeds and keep-alive
// connections are reused; against a server that closes keep-alive
// connections after their first answer (without Connection: close), each
// second request fails as "read: EOF before response" on a reused connection.
func TestLoad(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		var conns atomic.Int64
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "Hello, World!") }),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			},
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		l := StartLoad(LoadOptions{Addr: ln.Addr().String(), NewConns: 1, KeepAlive: 2, PerConn: 50, Body: []byte("Hello, World!")})
		testkit.WaitFor(t, "300 requests", 20*time.Second, func() bool { _, ok := l.Requests(); return ok >= 300 })
		l.Stop()
		made, ok := l.Requests()
		if made != ok || l.Failed() != 0 {
			t.Fatalf("made %d, ok %d, failed %d: %+v", made, ok, l.Failed(), l.Failures())
		}
		// Half the requests or more are on keep-alive connections of 50.
		if n := conns.Load(); n > made*3/4 {
			t.Errorf("connections: got %d for %d requests; keep-alive connections not reused", n, made)
		}
		if len(l.Latencies()) != int(ok) {
			t.Errorf("latencies: got %d, want %d", len(l.Latencies()), ok)
		}
	})
	t.Run("closes after one", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					br := bufio.NewReader(c)
					for {
						line, err := br.ReadString('\n')
						if err != nil || line == "\r\n" {
							break
						}
					}
					fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					// Closed at once, as a draining worker closes an idle
					// keep-alive connection: the client's next request
					// finds it gone.
				}()
			}
		}()
		l := StartLoad(LoadOptions{Addr: ln.Addr().String(), KeepAlive: 1, Gap: time.Millisecond})
		testkit.WaitFor(t, "5 failures", 20*time.Second, func() bool { return l.Failed() >= 5 })
		l.Stop()
		for _, f := range l.Failures() {
			if !f.KeepAlive || !f.Reused() || f.Nth != 2 || f.Port == 0 ||
				!strings.HasPrefix(f.Class, "read: ") && !strings.HasPrefix(f.Class, "write: ") {
				t.Errorf("failure: got %+v, want the 2nd request of a keep-alive connection failing to read or write", f)
			}
		}
	})
}
