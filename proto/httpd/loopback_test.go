package httpd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
)

func startServer(t *testing.T) (string, *loop.Loop, *Server) {
	t.Helper()
	h := New(Options{})
	addr, l := looptest.Start(t, loop.Config{Handler: h, LingerTimeout: time.Second})
	return addr, l, h
}

// readResponse reads one response with net/http's client-side parser and
// checks it is a 200 with the hello body (or none for HEAD).
func readOK(t *testing.T, br *bufio.Reader, method string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	want := Body
	if method == "HEAD" {
		want = ""
	}
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	if resp.ContentLength != int64(len(Body)) {
		t.Fatalf("got Content-Length %d, want %d", resp.ContentLength, len(Body))
	}
	return resp
}

// expectEOF checks that the server has closed the connection cleanly: the
// next read returns io.EOF, not a reset.
func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	b, err := br.ReadByte()
	if err != io.EOF {
		t.Fatalf("got byte %q, error %v, want io.EOF", b, err)
	}
}

// requests reads the handler's counter on the loop's thread.
func requests(t *testing.T, l *loop.Loop, h *Server) uint64 {
	t.Helper()
	return looptest.OnLoop(t, l, h.Requests)
}

func TestLoopbackKeepAlive(t *testing.T) {
	addr, l, h := startServer(t)
	c := testkit.Dial(t, addr)
	br := bufio.NewReader(c)
	for i := 0; i < 100; i++ {
		if _, err := io.WriteString(c, "GET /"+fmt.Sprint(i)+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp := readOK(t, br, "GET")
		if resp.Close {
			t.Fatalf("request %d: got Connection: close, want keep-alive", i)
		}
	}
	if got := requests(t, l, h); got != 100 {
		t.Errorf("got Requests() %d, want 100", got)
	}
}

func TestLoopbackPipelined(t *testing.T) {
	addr, _, _ := startServer(t)
	c := testkit.Dial(t, addr)
	var b strings.Builder
	methods := make([]string, 50)
	for i := range methods {
		methods[i] = "GET"
		if i%3 == 1 {
			methods[i] = "HEAD"
		}
		fmt.Fprintf(&b, "%s /%d HTTP/1.1\r\nHost: x\r\n\r\n", methods[i], i)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	// HEAD answers have no body: reading them in the wrong order would
	// misframe everything after.
	br := bufio.NewReader(c)
	for _, m := range methods {
		readOK(t, br, m)
	}
	if n := br.Buffered(); n != 0 {
		t.Errorf("got %d extra bytes, want 0", n)
	}
}

func TestLoopbackByteAtATime(t *testing.T) {
	addr, _, _ := startServer(t)
	c := testkit.Dial(t, addr)
	req := "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + getClose
	for i := 0; i < len(req); i++ {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	readOK(t, br, "POST")
	if resp := readOK(t, br, "GET"); !resp.Close {
		t.Errorf("got no Connection: close, want it")
	}
	expectEOF(t, br)
}

// readError reads an error response and checks the status, the body and
// the close that follows it.
func readError(t *testing.T, br *bufio.Reader, status int) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	want := http.StatusText(status) + "\n"
	if resp.StatusCode != status || string(body) != want || !resp.Close {
		t.Fatalf("got %d %q close %v, want %d %q close true", resp.StatusCode, body, resp.Close, status, want)
	}
	expectEOF(t, br)
}

// sendAsync writes p from a goroutine, since a client that writes more than
// the server reads could block, and returns the write's result.
func sendAsync(c net.Conn, p []byte) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(p)
		errc <- err
	}()
	return errc
}

func TestLoopbackErrors(t *testing.T) {
	addr, _, _ := startServer(t)
	tests := []struct {
		name   string
		in     []byte
		status int
		before int // 200s before the error
	}{
		{"garbage then 64 KiB of junk", append([]byte("GARBAGE\r\n"), bytes.Repeat([]byte("junk"), 16<<10)...), 400, 0},
		{"9 KiB head", []byte(headOfSize(9 << 10)), 431, 0},
		{"9 KiB head and more", []byte(headOfSize(9<<10) + strings.Repeat(get, 1000)), 431, 0},
		{"HTTP/2.0", []byte("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505, 0},
		{"unknown coding", []byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n"), 501, 0},
		{"good requests first", []byte(get + get + "GET / HTTP/1.1\r\nHost x\r\n\r\n" + get), 400, 2},
		{"bad body with a big tail", append([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
			bytes.Repeat([]byte{'z'}, 256<<10)...), 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testkit.Dial(t, addr)
			errc := sendAsync(c, tt.in)
			br := bufio.NewReader(c)
			for i := 0; i < tt.before; i++ {
				readOK(t, br, "GET")
			}
			readError(t, br, tt.status)
			// The lingering close read what we sent, so the write
			// completed; closing now is a clean close, not a reset.
			if err := <-errc; err != nil {
				t.Errorf("got write error %v, want nil", err)
			}
		})
	}
	t.Run("good connection after bad ones", func(t *testing.T) {
		c := testkit.Dial(t, addr)
		if _, err := io.WriteString(c, get+getClose); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		readOK(t, br, "GET")
		readOK(t, br, "GET")
		expectEOF(t, br)
	})
}

func TestLoopbackClose(t *testing.T) {
	addr, _, _ := startServer(t)
	tests := []struct {
		name, req, method string
	}{
		{"1.1 Connection: close", getClose, "GET"},
		{"1.0", get10, "GET"},
		{"1.0 HEAD", "HEAD / HTTP/1.0\r\n\r\n", "HEAD"},
		{"1.1 close after keep-alive", get + getClose, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testkit.Dial(t, addr)
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			var resp *http.Response
			for range strings.Count(tt.req, "\r\n\r\n") {
				resp = readOK(t, br, tt.method)
			}
			// net/http moves "Connection: close" into resp.Close.
			if !resp.Close {
				t.Errorf("got no Connection: close, want it")
			}
			expectEOF(t, br)
		})
	}
	t.Run("1.0 keep-alive", func(t *testing.T) {
		c := testkit.Dial(t, addr)
		br := bufio.NewReader(c)
		for i := 0; i < 3; i++ {
			if _, err := io.WriteString(c, get10KA); err != nil {
				t.Fatal(err)
			}
			if resp := readOK(t, br, "GET"); resp.Header.Get("Connection") != "keep-alive" {
				t.Fatalf("got Connection %q, want keep-alive", resp.Header.Get("Connection"))
			}
		}
	})
}

func TestLoopbackChunkedBody(t *testing.T) {
	addr, _, _ := startServer(t)
	c := testkit.Dial(t, addr)
	var b bytes.Buffer
	b.WriteString("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<10) // 16 KiB
	for sent := 0; sent < 1<<20; sent += len(chunk) {
		fmt.Fprintf(&b, "%x;n=%d\r\n", len(chunk), sent)
		b.Write(chunk)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\nX-Trailer: done\r\n\r\n")
	b.WriteString(get)
	errc := sendAsync(c, b.Bytes())
	br := bufio.NewReader(c)
	readOK(t, br, "POST")
	readOK(t, br, "GET")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackExpectContinue(t *testing.T) {
	addr, _, _ := startServer(t)
	c := testkit.Dial(t, addr)
	if _, err := io.WriteString(c, "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The body is only sent once the 100 has arrived, as a client does.
	br := bufio.NewReader(c)
	buf := make([]byte, len(cont100))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != cont100 {
		t.Fatalf("got %q, %v, want %q", buf, err, cont100)
	}
	if _, err := io.WriteString(c, "hello"+get); err != nil {
		t.Fatal(err)
	}
	readOK(t, br, "PUT")
	readOK(t, br, "GET")
}

func TestLoopbackNetHTTPClient(t *testing.T) {
	addr, _, _ := startServer(t)
	var dials atomic.Int32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		},
		ExpectContinueTimeout: testkit.IOTimeout,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testkit.IOTimeout}
	check := func(resp *http.Response, wantBody string) {
		t.Helper()
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || string(body) != wantBody {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, wantBody)
		}
		if got := resp.Header.Get("Server"); got != "prefork" {
			t.Errorf("got Server %q, want prefork", got)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain" {
			t.Errorf("got Content-Type %q, want text/plain", got)
		}
		if got := resp.Header.Get("Content-Length"); got != "13" {
			t.Errorf("got Content-Length %q, want 13", got)
		}
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
		}
		if off := time.Since(d); off < -2*time.Second || off > 2*time.Second {
			t.Errorf("got Date %v, %v from now, want within 2s", d, off)
		}
	}
	url := "http://" + addr + "/"
	for i := 0; i < 100; i++ {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		check(resp, Body)
	}
	resp, err := client.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	check(resp, "")
	// An unknown length is sent chunked, after waiting for 100 Continue.
	req, err := http.NewRequest("POST", url, io.MultiReader(strings.NewReader("part one, "), strings.NewReader("part two")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	check(resp, Body)
	if got := dials.Load(); got != 1 {
		t.Errorf("got %d connections, want 1 (keep-alive)", got)
	}
}

// drainSpy reports OnData calls that leave a partial request buffered, so
// a test knows the server has read a half-sent head.
type drainSpy struct {
	*Server
	partial chan struct{}
}

func (d *drainSpy) OnData(c *loop.Conn, in []byte) int {
	n := d.Server.OnData(c, in)
	if n < len(in) {
		select {
		case d.partial <- struct{}{}:
		default:
		}
	}
	return n
}

func TestLoopbackDrain(t *testing.T) {
	spy := &drainSpy{Server: New(Options{}), partial: make(chan struct{}, 1)}

	addr, l := looptest.Start(t, loop.Config{Handler: spy, LingerTimeout: time.Second})

	idle := testkit.Dial(t, addr)
	if _, err := io.WriteString(idle, get); err != nil {
		t.Fatal(err)
	}
	idleR := bufio.NewReader(idle)
	readOK(t, idleR, "GET")

	busy := testkit.Dial(t, addr)
	half := "GET /slow HTTP/1.1\r\nHost: x\r\n"
	if _, err := io.WriteString(busy, half); err != nil {
		t.Fatal(err)
	}
	select {
	case <-spy.partial:
	case <-time.After(testkit.IOTimeout):
		t.Fatal("the server did not read the half head")
	}

	start := time.Now()
	l.Shutdown(5 * time.Second)

	// The idle connection closes once quiet for the loop's DrainQuiet (1 s).
	if err := idle.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, idleR)

	// The request in flight is answered, with Connection: close.
	if _, err := io.WriteString(busy, "\r\n"); err != nil {
		t.Fatal(err)
	}
	busyR := bufio.NewReader(busy)
	if resp := readOK(t, busyR, "GET"); !resp.Close {
		t.Errorf("got no Connection: close on the drained response, want it")
	}
	expectEOF(t, busyR)

	// With both gone, the loop stops well before the grace period ends.
	select {
	case <-l.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("loop did not stop within 3s of its last connection closing")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("drain took %v, want well under the 5s grace", d)
	}
}
