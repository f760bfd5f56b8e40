package httpd

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
)

// TestHeaderTimeout408: a head sent a byte at a time (slowloris) gets 408
// and a clean close once it has taken the header timeout, while a client
// with whole requests is served throughout; after a complete head the clock
// is stopped, so a keep-alive connection's next head gets its own.
func TestHeaderTimeout408(t *testing.T) {
	const timeout = 400 * time.Millisecond
	h := New(Options{})
	addr, l := looptest.Start(t, loop.Config{Handler: h, HeaderTimeout: timeout, IdleTimeout: time.Minute, LingerTimeout: time.Second})

	// Two slow heads on one keep-alive connection, each under the timeout.
	ka := testkit.Dial(t, addr)
	kaR := bufio.NewReader(ka)
	for i := 0; i < 2; i++ {
		for _, part := range []string{"GET / HTTP/1.1\r\n", "Host: x\r\n", "\r\n"} {
			if _, err := io.WriteString(ka, part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(timeout / 4) // the client's pace, not synchronisation
		}
		readOK(t, kaR, "GET")
	}

	slow := testkit.Dial(t, addr)
	start := time.Now()
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(slow); slow.Close(); got <- string(b) }()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
	var resp string
	for i := 0; resp == "" && i < len(head); i++ {
		_, _ = slow.Write([]byte{head[i]}) // may fail once the server closed
		select {
		case resp = <-got:
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := io.WriteString(ka, get); err != nil {
			t.Fatal(err)
		}
		readOK(t, kaR, "GET")
	}
	if resp == "" {
		select {
		case resp = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow head was not closed")
		}
	}
	if el := time.Since(start); el < timeout {
		t.Errorf("closed after %v, before the header timeout %v", el, timeout)
	}
	if !strings.HasPrefix(resp, "HTTP/1.1 408 ") || !strings.Contains(resp, "Connection: close") {
		t.Errorf("slow head: got %q, want 408 with Connection: close", resp)
	}
	testkit.WaitFor(t, "the header timeout to be counted", 10*time.Second, func() bool {
		return looptest.OnLoop(t, l, l.Stats).Closed[loop.ReasonHeaderTimeout] == 1
	})
}

// TestDrainKeepAlive: a keep-alive connection that sends its next request
// just after the drain began is answered (with Connection: close), not
// closed under the request.
func TestDrainKeepAlive(t *testing.T) {
	h := New(Options{})
	addr, l := looptest.Start(t, loop.Config{Handler: h, LingerTimeout: time.Second})
	c := testkit.Dial(t, addr)
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, get); err != nil {
		t.Fatal(err)
	}
	readOK(t, br, "GET")
	l.Shutdown(10 * time.Second)
	testkit.WaitFor(t, "the drain to begin", 10*time.Second, func() bool {
		return looptest.OnLoop(t, l, func() bool { return l.Draining() })
	})
	if _, err := io.WriteString(c, get); err != nil {
		t.Fatal(err)
	}
	resp := readOK(t, br, "GET")
	if !resp.Close {
		t.Error("the response during the drain has no Connection: close")
	}
	expectEOF(t, br)
}

// TestPipelineOutputBounded: a client pipelines 2,000 requests for 64 KiB
// answers and does not read. The server serves them as the client reads,
// never owing much more than the loop's high-water mark (not 125 MiB of
// answers at once), and every answer arrives, in order, once it reads.
func TestPipelineOutputBounded(t *testing.T) {
	const n, size, highWater = 2000, 64 << 10, 256 << 10
	body := bytes.Repeat([]byte("z"), size)
	h := New(Options{Handler: HandlerFunc(func(c *Ctx) { _, _ = c.Write(body) })})
	addr, l := looptest.Start(t, loop.Config{Handler: h, HighWater: highWater})
	c := testkit.Dial(t, addr)
	_ = c.SetReadBuffer(16 << 10)
	req := strings.Repeat("GET /x HTTP/1.1\r\nHost: x\r\n\r\n", n)
	go func() { _, _ = io.WriteString(c, req) }() // blocks until the server reads it all
	peak := 0
	testkit.WaitFor(t, "the server to stop at its high-water mark", 10*time.Second, func() bool {
		st := looptest.OnLoop(t, l, l.Stats)
		peak = max(peak, st.OutputBuffered)
		return st.Paused > 0
	})
	for range 20 { // watch it a while: nothing more piles up
		st := looptest.OnLoop(t, l, l.Stats)
		peak = max(peak, st.OutputBuffered+st.InputBuffered)
		time.Sleep(10 * time.Millisecond) // sampling, not synchronisation
	}
	if limit := highWater + 2*size + 64<<10; peak > limit {
		t.Errorf("buffered for one non-reading client: got %d bytes, want at most %d", peak, limit)
	}
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || len(got) != size {
			t.Fatalf("response %d: %d bytes, %v; want %d", i, len(got), err, size)
		}
	}
	t.Logf("peak buffered %d KiB for %d MiB of answers", peak>>10, n*size>>20)
}
