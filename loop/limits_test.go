package loop_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
)

// lineProto answers every complete line with "ok\n"; a line cut by a read
// is a head in flight (BeginHead), and a head that times out is answered
// "timeout\n" (HeadTimeouter). On drain it answers the next line, then
// closes, and closes a quiet connection (CloseWhenQuiet).
type lineProto struct{ draining map[*loop.Conn]bool }

func (p *lineProto) OnOpen(*loop.Conn) {}
func (p *lineProto) OnData(c *loop.Conn, in []byte) int {
	n := bytes.LastIndexByte(in, '\n') + 1
	for range bytes.Count(in[:n], []byte("\n")) {
		_, _ = c.Write([]byte("ok\n"))
	}
	if n > 0 {
		c.EndHead()
		if p.draining[c] {
			c.Close(loop.ReasonShutdown)
			return len(in)
		}
	}
	if n < len(in) {
		c.BeginHead()
	}
	return n
}
func (p *lineProto) OnClose(*loop.Conn, loop.CloseReason) {}
func (p *lineProto) OnHeadTimeout(c *loop.Conn) {
	_, _ = c.Write([]byte("timeout\n"))
}
func (p *lineProto) OnDrain(c *loop.Conn) {
	p.draining[c] = true
	c.CloseWhenQuiet(loop.ReasonShutdown)
}

// TestHeaderTimeout: a client that sends a head a byte at a time, each byte
// well within the idle timeout, is answered and closed once the head has
// taken HeaderTimeout; a client whose heads complete is served on.
func TestHeaderTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	addr, l := looptest.Start(t, loop.Config{Handler: &lineProto{}, HeaderTimeout: timeout, IdleTimeout: 10 * time.Second})
	slow, good := dial(t, addr), dial(t, addr)
	start := time.Now()
	closed := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(slow); closed <- b }()
	var got []byte
	for i := 0; got == nil; i++ {
		if _, err := slow.Write([]byte("x")); err != nil && !errors.Is(err, net.ErrClosed) {
			// The server may have closed it between two bytes: fine.
			t.Logf("slow write %d: %v", i, err)
		}
		if _, err := good.Write([]byte("GET\n")); err != nil {
			t.Fatalf("good client: %v", err)
		}
		buf := make([]byte, 3)
		if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "ok\n" {
			t.Fatalf("good client: got %q, %v; want ok", buf, err)
		}
		select {
		case got = <-closed:
		case <-time.After(50 * time.Millisecond):
			if time.Since(start) > 20*timeout {
				t.Fatalf("the slow head is still open after %v (header timeout %v)", time.Since(start), timeout)
			}
		}
	}
	if el := time.Since(start); el < timeout {
		t.Errorf("slow head closed after %v, before the header timeout %v", el, timeout)
	}
	if string(got) != "timeout\n" {
		t.Errorf("slow client: got %q, want the handler's timeout answer", got)
	}
	// The good client outlived it and is still served.
	if _, err := good.Write([]byte("GET\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(good, buf); err != nil {
		t.Fatalf("good client after the timeout: %v", err)
	}
	st := statsOf(t, l)
	if st.Closed[loop.ReasonHeaderTimeout] != 1 || st.Active != 1 {
		t.Errorf("got %d header timeouts and %d open, want 1 and 1", st.Closed[loop.ReasonHeaderTimeout], st.Active)
	}
}

// flooder answers every input byte with 1 MiB: a client that does not read
// makes its output pile up at once.
type flooder struct{ chunk []byte }

func (f *flooder) OnOpen(*loop.Conn) {}
func (f *flooder) OnData(c *loop.Conn, in []byte) int {
	for range in {
		_, _ = c.Write(f.chunk)
	}
	return len(in)
}
func (f *flooder) OnClose(*loop.Conn, loop.CloseReason) {}

// TestWriteTimeout: a client that never reads is closed once its output
// has made no progress for WriteTimeout, and its buffers freed; a client
// that reads slowly but steadily is not.
func TestWriteTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	addr, l := looptest.Start(t, loop.Config{Handler: &flooder{chunk: make([]byte, 1<<20)}, WriteTimeout: timeout})
	stuck, slow := dial(t, addr), dial(t, addr)
	_ = stuck.SetReadBuffer(4 << 10)
	// 16 MiB owed: more than the kernel's socket buffers take. The write
	// clock cannot start before this write.
	start := time.Now()
	if _, err := stuck.Write(bytes.Repeat([]byte("x"), 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "output to pile up", 10*time.Second, func() bool { return statsOf(t, l).OutputBuffered > 0 })
	read := 0
	buf := make([]byte, 32<<10)
	for statsOf(t, l).Closed[loop.ReasonWriteTimeout] == 0 {
		if time.Since(start) > 20*timeout {
			t.Fatalf("the client that never reads is still open after %v (write timeout %v)", time.Since(start), timeout)
		}
		// The slow reader takes 32 KiB every 50 ms: progress, never a stall.
		n, err := slow.Read(buf)
		if err != nil {
			t.Fatalf("slow reader after %d bytes: %v", read, err)
		}
		read += n
		time.Sleep(50 * time.Millisecond) // the reader's pace, not synchronisation
	}
	if el := time.Since(start); el < timeout {
		t.Errorf("closed %v after the first write, before the write timeout %v", el, timeout)
	}
	// The stalled connection is gone; the slow one is still served.
	if _, err := io.CopyN(io.Discard, slow, 1<<20-int64(read)); err != nil {
		t.Fatalf("slow reader, rest of its 1 MiB: %v", err)
	}
	st := statsOf(t, l)
	if st.Active != 1 {
		t.Errorf("open connections: got %d, want 1 (the slow reader)", st.Active)
	}
	if st.OutputBuffered != 0 {
		t.Errorf("output still held: got %d bytes, want 0", st.OutputBuffered)
	}
}

// TestMaxConns: past MaxConns new connections wait in the backlog — neither
// served nor reset — and are taken, in turn, as open ones close.
func TestMaxConns(t *testing.T) {
	addr, l := looptest.Start(t, loop.Config{Handler: echo.New(), MaxConns: 2})
	conns := make([]*net.TCPConn, 5)
	for i := range conns {
		conns[i] = dial(t, addr) // the kernel completes the handshake: they queue
		if _, err := conns[i].Write([]byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	echoed := func(i int) bool {
		_ = conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 1)
		_, err := io.ReadFull(conns[i], b)
		return err == nil && b[0] == 'a'+byte(i)
	}
	for i := 0; i < 2; i++ {
		if !echoed(i) {
			t.Fatalf("connection %d (under the limit) not served", i)
		}
	}
	testkit.WaitFor(t, "accepting to pause", 10*time.Second, func() bool { return statsOf(t, l).AcceptPaused == 1 })
	if got := statsOf(t, l).Active; got != 2 {
		t.Fatalf("open connections: got %d, want 2 (MaxConns)", got)
	}
	// The queued ones are served one by one as others close.
	for i := 2; i < len(conns); i++ {
		conns[i-2].Close()
		if !echoed(i) {
			t.Fatalf("queued connection %d: not served (or reset) after one closed", i)
		}
	}
	if got := statsOf(t, l).Closed[loop.ReasonError]; got != 0 {
		t.Errorf("connections closed by errors: got %d, want 0", got)
	}
}

// TestCloseWhenQuiet: during a drain, a connection given to CloseWhenQuiet
// that sends a request is answered before it closes; a quiet one closes
// after DrainQuiet, cleanly.
func TestCloseWhenQuiet(t *testing.T) {
	const quiet = 300 * time.Millisecond
	p := &lineProto{draining: map[*loop.Conn]bool{}}
	addr, l := looptest.Start(t, loop.Config{Handler: p, DrainQuiet: quiet})
	busy, idle := dial(t, addr), dial(t, addr)
	for _, c := range []*net.TCPConn{busy, idle} {
		if _, err := c.Write([]byte("hi\n")); err != nil {
			t.Fatal(err)
		}
		if b := make([]byte, 3); func() error { _, err := io.ReadFull(c, b); return err }() != nil {
			t.Fatal("no first answer")
		}
	}
	start := time.Now()
	l.Shutdown(10 * time.Second)
	testkit.WaitFor(t, "the drain to begin", 10*time.Second, func() bool {
		return looptest.OnLoop(t, l, func() bool { return l.Draining() })
	})
	// A request right after the drain began is answered, then the close.
	if _, err := busy.Write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	if got := readEOF(t, busy); string(got) != "ok\n" {
		t.Errorf("request during the drain: got %q, want ok then EOF", got)
	}
	if got := readEOF(t, idle); len(got) != 0 {
		t.Errorf("quiet connection: got %q, want a bare EOF", got)
	}
	if el := time.Since(start); el < quiet {
		t.Errorf("quiet connection closed after %v, before DrainQuiet %v", el, quiet)
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not finish its drain")
	}
}
