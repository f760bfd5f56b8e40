package loop_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/reuseport"
	"golang.org/x/sys/unix"
)

func statsOf(t testing.TB, l *loop.Loop) loop.Stats {
	return looptest.OnLoop(t, l, l.Stats)
}

// dial is testkit.Dial with the 20 s I/O deadline these tests have always
// had, twice testkit.IOTimeout.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c := testkit.Dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// readEOF reads until EOF and fails on a reset or timeout.
func readEOF(t testing.TB, c net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading to EOF: got %v, want a clean EOF", err)
	}
	return b
}

func TestEchoSizes(t *testing.T) {
	addr, _ := looptest.Start(t, loop.Config{Handler: echo.New()})
	for _, size := range []int{1, 100, 4096, 65535, 65536, 65537, 300_000} {
		c := dial(t, addr)
		msg := make([]byte, size)
		_, _ = rand.Read(msg)
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("size %d: read: %v", size, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("size %d: write: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs", size)
		}
	}
}

// TestEchoLateReader sends 8 MiB to a client that reads only once the server
// has had to stop reading from it: the loop must pause (backpressure), hold
// bounded output, and deliver every byte in order when the client reads.
func TestEchoLateReader(t *testing.T) {
	const size = 8 << 20
	cfg := loop.Config{Handler: echo.New(), HighWater: 256 << 10}
	addr, l := looptest.Start(t, cfg)
	c := dial(t, addr)
	_ = c.SetReadBuffer(64 << 10)
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()

	testkit.WaitFor(t, "the loop to pause reading", 10*time.Second, func() bool { return statsOf(t, l).Paused > 0 })
	st := statsOf(t, l)
	if limit := cfg.HighWater + 64<<10; st.OutputBuffered > limit {
		t.Errorf("buffered output: got %d bytes, want at most %d", st.OutputBuffered, limit)
	}

	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo of 8 MiB differs")
	}
	testkit.WaitFor(t, "output to drain", 10*time.Second, func() bool { return statsOf(t, l).OutputBuffered == 0 })
}

func TestHalfClose(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	c := dial(t, addr)
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := readEOF(t, c); string(got) != "last words" {
		t.Fatalf("got %q, want %q", got, "last words")
	}
	testkit.WaitFor(t, "close counted as peer", 10*time.Second, func() bool { return statsOf(t, l).Closed[loop.ReasonPeer] == 1 })
}

func TestPeerReset(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	c := dial(t, addr)
	testkit.WaitFor(t, "accept", 10*time.Second, func() bool { return statsOf(t, l).Active == 1 })
	_ = c.SetLinger(0) // close sends RST
	c.Close()
	testkit.WaitFor(t, "the reset connection to close", 10*time.Second, func() bool { return statsOf(t, l).Active == 0 })
	st := statsOf(t, l)
	if st.Closed[loop.ReasonError]+st.Closed[loop.ReasonPeer] != 1 {
		t.Fatalf("closed: got %v, want one error or peer close", st.Closed)
	}
}

func TestManyClients(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	const clients, rounds = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 64)
			for r := 0; r < rounds; r++ {
				msg := bytes.Repeat([]byte{byte(i), byte(r)}, 32)
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, msg) {
					errs <- errors.New("echo mismatch")
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	testkit.WaitFor(t, "all closed", 10*time.Second, func() bool { return statsOf(t, l).Active == 0 })
	if got := statsOf(t, l).Accepted; got != clients {
		t.Fatalf("accepted: got %d, want %d", got, clients)
	}
}

// closeOnData answers its first input with a fixed reply and closes,
// lingering or not.
type closeOnData struct {
	reply  []byte
	linger bool
}

func (h *closeOnData) OnOpen(*loop.Conn) {}
func (h *closeOnData) OnData(c *loop.Conn, in []byte) int {
	_, _ = c.Write(h.reply)
	if h.linger {
		c.CloseLingering(loop.ReasonProtocolError)
	} else {
		c.Close(loop.ReasonLocal)
	}
	return len(in)
}
func (h *closeOnData) OnClose(*loop.Conn, loop.CloseReason) {}

// TestLingeringClose: a client that sent more than the server read still gets
// the reply and a clean EOF, not a reset.
func TestLingeringClose(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{
		Handler:       &closeOnData{reply: []byte("rejected\n"), linger: true},
		LingerTimeout: 5 * time.Second,
	})
	c := dial(t, addr)
	junk := bytes.Repeat([]byte("x"), 256<<10)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(junk); errc <- err }()
	if got := readEOF(t, c); string(got) != "rejected\n" {
		t.Fatalf("got %q, want %q", got, "rejected\n")
	}
	<-errc // the write may fail once the server has closed: either is fine
	c.Close()
	testkit.WaitFor(t, "close", 10*time.Second, func() bool { return statsOf(t, l).Closed[loop.ReasonProtocolError] == 1 })
}

// TestLingerTimeout: a peer that keeps the connection open is cut when the
// linger time ends.
func TestLingerTimeout(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{
		Handler:       &closeOnData{reply: []byte("bye\n"), linger: true},
		LingerTimeout: 200 * time.Millisecond,
	})
	c := dial(t, addr)
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	// The client never closes; the server must give up by itself.
	if got := readEOF(t, c); string(got) != "bye\n" {
		t.Fatalf("got %q, want %q", got, "bye\n")
	}
	testkit.WaitFor(t, "linger timeout to close", 10*time.Second, func() bool { return statsOf(t, l).Active == 0 })
}

func TestIdleTimeout(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New(), IdleTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	start := time.Now()
	readEOF(t, c)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", el)
	}
	testkit.WaitFor(t, "timeout counted", 10*time.Second, func() bool { return statsOf(t, l).Closed[loop.ReasonTimeout] == 1 })
}

func TestShutdownGraceful(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	c := dial(t, addr)
	testkit.WaitFor(t, "accept", 10*time.Second, func() bool { return statsOf(t, l).Active == 1 })
	l.Shutdown(10 * time.Second)

	// The listener is gone: new connections are refused.
	testkit.WaitFor(t, "the listener to close", 10*time.Second, func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return false
		}
		return true
	})
	// The open connection is still served.
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("got %q, %v; want the echo", buf, err)
	}
	select {
	case <-l.Done():
		t.Fatal("loop stopped with a connection open")
	default:
	}
	c.Close()
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not stop after its last connection closed")
	}
}

func TestShutdownDeadline(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	c := dial(t, addr)
	testkit.WaitFor(t, "accept", 10*time.Second, func() bool { return statsOf(t, l).Active == 1 })
	l.Shutdown(200 * time.Millisecond)
	readEOF(t, c) // cut at the deadline
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not stop at its deadline")
	}
}

func TestTimersAndPost(t *testing.T) {
	_, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	fired := make(chan int, 10)
	looptest.OnLoop(t, l, func() bool {
		l.AfterFunc(60*time.Millisecond, func() { fired <- 3 })
		l.AfterFunc(20*time.Millisecond, func() { fired <- 1 })
		tm := l.AfterFunc(40*time.Millisecond, func() { fired <- 2 })
		stopped := l.AfterFunc(30*time.Millisecond, func() { fired <- -1 })
		stopped.Stop()
		tm.Reset(50 * time.Millisecond)
		return true
	})
	for _, want := range []int{1, 2, 3} {
		select {
		case got := <-fired:
			if got != want {
				t.Fatalf("timer order: got %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("timer did not fire")
		}
	}

	// Post from many goroutines: every task runs once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Post(func() { mu.Lock(); count++; mu.Unlock() })
		}()
	}
	wg.Wait()
	testkit.WaitFor(t, "all posted tasks", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return count == 100 })
}

func TestTick(t *testing.T) {
	ticks := make(chan struct{}, 100)
	looptest.Start(t, loop.Config{
		Handler:      echo.New(),
		TickInterval: 10 * time.Millisecond,
		OnTick:       func() { ticks <- struct{}{} },
	})
	for i := 0; i < 3; i++ {
		select {
		case <-ticks:
		case <-time.After(5 * time.Second):
			t.Fatal("no tick")
		}
	}
}

// openFDs lists this process's fds above stderr with their targets.
func openFDs() map[int]string {
	fds := map[int]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil || fd <= 2 {
			continue
		}
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[fd] = link
	}
	return fds
}

// TestFDsCloseOnExec checks every fd the loop opened (epoll, eventfd, spare,
// accepted connections) is CLOEXEC, and connections are non-blocking.
func TestFDsCloseOnExec(t *testing.T) {
	before := openFDs()
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New()})
	dial(t, addr)
	testkit.WaitFor(t, "accept", 10*time.Second, func() bool { return statsOf(t, l).Active == 1 })
	bad := looptest.OnLoop(t, l, func() []string {
		var bad []string
		checked := 0
		for fd, link := range openFDs() {
			if before[fd] == link {
				continue
			}
			checked++
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err == nil && flags&unix.FD_CLOEXEC == 0 {
				bad = append(bad, fmt.Sprint(fd, " ", link))
			}
		}
		if checked < 5 { // epoll, eventfd, spare, listener, connection, client
			bad = append(bad, fmt.Sprintf("only %d new fds seen", checked))
		}
		return bad
	})
	if len(bad) > 0 {
		t.Fatalf("fds without FD_CLOEXEC: %v", bad)
	}
}

func TestRemoteAddr(t *testing.T) {
	got := make(chan string, 1)
	h := &addrHandler{got: got}
	addr, _ := looptest.Start(t, loop.Config{Handler: h})
	c := dial(t, addr)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a != c.LocalAddr().String() {
			t.Fatalf("RemoteAddr: got %s, want %s", a, c.LocalAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no data")
	}
}

type addrHandler struct{ got chan string }

func (h *addrHandler) OnOpen(*loop.Conn) {}
func (h *addrHandler) OnData(c *loop.Conn, in []byte) int {
	a, err := c.RemoteAddr()
	if err != nil {
		h.got <- err.Error()
	} else {
		h.got <- a.String()
	}
	return len(in)
}
func (h *addrHandler) OnClose(*loop.Conn, loop.CloseReason) {}

func TestDualListeners(t *testing.T) {
	l, err := loop.New(loop.Config{Handler: echo.New()})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		fd, err := reuseport.Listen(a, reuseport.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ba, _ := reuseport.BoundAddr(fd)
		addrs = append(addrs, ba)
		if err := l.AddListener(fd, false); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = l.Run() }()
	defer func() { l.Stop(); <-l.Done() }()
	for _, a := range addrs {
		c := dial(t, a)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%s: got %q, %v", a, buf, err)
		}
	}
}

// holdLines answers whole lines, one per OnData call, holding its input
// after each until the test resumes it.
type holdLines struct {
	conn chan *loop.Conn
}

func (h *holdLines) OnOpen(*loop.Conn) {}
func (h *holdLines) OnData(c *loop.Conn, in []byte) int {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		return 0
	}
	_, _ = c.Write(in[:i+1])
	c.HoldInput()
	h.conn <- c
	return i + 1
}
func (h *holdLines) OnClose(*loop.Conn, loop.CloseReason) {}

// TestHoldInput: a held connection gets no OnData; ResumeInput delivers the
// input left unconsumed although nothing new arrives.
func TestHoldInput(t *testing.T) {
	h := &holdLines{conn: make(chan *loop.Conn, 4)}
	addr, l := looptest.Start(t, loop.Config{Handler: h})
	c := dial(t, addr)
	if _, err := c.Write([]byte("one\ntwo\nthree\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, want := range []string{"one\n", "two\n", "three\n"} {
		n, err := io.ReadAtLeast(c, buf, len(want))
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q, %v; want %q", buf[:n], err, want)
		}
		lc := <-h.conn
		if !looptest.OnLoop(t, l, lc.Held) {
			t.Fatal("HoldInput not in force")
		}
		select {
		case <-h.conn:
			t.Fatal("OnData while held")
		default:
		}
		looptest.OnLoop(t, l, func() bool { lc.ResumeInput(); return true })
	}
}

type stopSpy struct {
	holdLines
	stopped chan int // open connections seen by OnStop
	open    int
}

func (s *stopSpy) OnOpen(*loop.Conn)                    { s.open++ }
func (s *stopSpy) OnClose(*loop.Conn, loop.CloseReason) { s.open-- }
func (s *stopSpy) OnStop()                              { s.stopped <- s.open }

// TestStopper: OnStop runs once as Run returns, after every OnClose.
func TestStopper(t *testing.T) {
	h := &stopSpy{stopped: make(chan int, 2)}
	addr, l := looptest.Start(t, loop.Config{Handler: h})
	dial(t, addr)
	testkit.WaitFor(t, "the connection open", 5*time.Second, func() bool {
		return looptest.OnLoop(t, l, func() int { return h.open }) == 1
	})
	l.Stop()
	<-l.Done()
	select {
	case open := <-h.stopped:
		if open != 0 {
			t.Errorf("OnStop with %d connections still open, want 0", open)
		}
	default:
		t.Fatal("OnStop not called")
	}
	if len(h.stopped) != 0 {
		t.Error("OnStop called twice")
	}
}
