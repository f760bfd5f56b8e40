package httpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
)

// startHandler serves h on a real loop over loopback.
func startHandler(t *testing.T, opts Options) (string, *loop.Loop, *Server) {
	t.Helper()
	srv := New(opts)
	cfg := loop.Config{Handler: srv, LingerTimeout: time.Second}
	if opts.MaxBody > 0 {
		cfg.MaxInput = int(opts.MaxBody) + 1<<20
	}
	addr, l := looptest.Start(t, cfg)
	return addr, l, srv
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// TestCtxRequest: every request accessor of the native API, seen by a
// handler over a real connection.
func TestCtxRequest(t *testing.T) {
	addr, _, _ := startHandler(t, Options{Handler: HandlerFunc(func(c *Ctx) {
		a, okA := c.Query("a")
		b, _ := c.Query("b")
		_, okZ := c.Query("z")
		var all []string
		c.VisitQuery(func(k, v []byte) bool { all = append(all, string(k)+"="+string(v)); return true })
		var names []string
		c.VisitHeaders(func(n, v []byte) bool { names = append(names, string(n)); return true })
		fmt.Fprintf(c, "method=%s target=%s raw=%s path=%s qs=%s a=%s/%v b=%s z=%v all=%s x=%s host=%s proto=%s minor=%d ka=%v names=%s len=%d body=%s",
			c.Method(), c.Target(), c.RawPath(), c.Path(), c.QueryString(), a, okA, b, okZ, strings.Join(all, ","),
			c.Header("x-TEST"), c.Host(), c.Proto(), c.ProtoMinor(), c.KeepAlive(), strings.Join(names, ","),
			c.ContentLength(), c.Body())
		if ra, err := c.RemoteAddr(); err != nil || !strings.HasPrefix(ra.String(), "127.0.0.1:") {
			c.SetStatus(500)
		}
	})})
	conn := testkit.Dial(t, addr)
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "POST /p%%20q/x?a=1&b=hello+w%%6Frld&a=2&flag HTTP/1.1\r\nHost: example.org\r\nX-Test:  v1 \r\nContent-Length: 3\r\n\r\nabc")
	resp, body := readResp(t, br, "POST")
	want := "method=POST target=/p%20q/x?a=1&b=hello+w%6Frld&a=2&flag raw=/p%20q/x path=/p q/x qs=a=1&b=hello+w%6Frld&a=2&flag " +
		"a=1/true b=hello world z=false all=a=1,b=hello world,a=2,flag= x=v1 host=example.org proto=HTTP/1.1 minor=1 ka=true " +
		"names=Host,X-Test,Content-Length len=3 body=abc"
	if resp.StatusCode != 200 || body != want {
		t.Errorf("got %d\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	fmt.Fprintf(conn, "GET http://example.org?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = readResp(t, br, "GET")
	if !strings.Contains(body, "raw=/ path=/ qs=x=1") || !strings.Contains(body, "proto=HTTP/1.0 minor=0 ka=true") ||
		resp.Header.Get("Connection") != "keep-alive" {
		t.Errorf("absolute-form HTTP/1.0: got %q %v", body, resp.Header)
	}
}

// TestResponseHeaders: set, add, delete; what the server fills in; what a
// handler may not set; HEAD without a body; 204 without a length.
func TestResponseHeaders(t *testing.T) {
	errs := make(chan []error, 1)
	addr, _, _ := startHandler(t, Options{Handler: HandlerFunc(func(c *Ctx) {
		var got []error
		got = append(got, c.SetHeader("X-A", "1"))
		got = append(got, c.SetHeader("x-a", "2")) // replaces
		got = append(got, c.AddHeader("Set-Cookie", "a=1"))
		got = append(got, c.AddHeader("Set-Cookie", "b=2"))
		got = append(got, c.SetHeader("X-Gone", "x"))
		c.DelHeader("X-GONE")
		got = append(got, c.SetHeader("X-Evil", "a\r\nInjected: 1"))
		got = append(got, c.SetHeader("Bad Name", "x"))
		got = append(got, c.SetHeader("X-Nul", "a\x00b"))
		got = append(got, c.SetHeader("Content-Length", "99"))
		got = append(got, c.SetHeader("connection", "close"))
		got = append(got, c.SetHeader("Server", "other"))
		_ = c.SetContentType("application/json")
		switch string(c.Path()) {
		case "/nocontent":
			c.SetStatus(204)
		case "/teapot":
			c.SetStatus(418)
		case "/bad":
			c.SetStatus(42)
		}
		_, _ = c.WriteString(`{"ok":true}`)
		select {
		case errs <- got:
		default:
		}
	})})
	conn := testkit.Dial(t, addr)
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body := readResp(t, br, "GET")
	got := <-errs
	wantErrs := []error{nil, nil, nil, nil, nil, ErrInvalidHeader, ErrInvalidHeader, ErrInvalidHeader,
		ErrReservedHeader, ErrReservedHeader, ErrReservedHeader}
	for i, w := range wantErrs {
		if !errors.Is(got[i], w) {
			t.Errorf("setter %d: got %v, want %v", i, got[i], w)
		}
	}
	h := resp.Header
	if h.Get("X-A") != "2" || strings.Join(h.Values("Set-Cookie"), ",") != "a=1,b=2" || h.Get("X-Gone") != "" ||
		h.Get("X-Evil") != "" || h.Get("Injected") != "" || h.Get("Server") != "prefork" || h.Get("Date") == "" ||
		resp.ContentLength != 11 || body != `{"ok":true}` || h.Get("Content-Type") != "application/json" {
		t.Errorf("got %v %q", h, body)
	}
	fmt.Fprintf(conn, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body = readResp(t, br, "HEAD")
	if resp.ContentLength != 11 || body != "" {
		t.Errorf("HEAD: got length %d body %q, want 11 and none", resp.ContentLength, body)
	}
	fmt.Fprintf(conn, "GET /nocontent HTTP/1.1\r\nHost: h\r\n\r\nGET /teapot HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body = readResp(t, br, "GET")
	if resp.StatusCode != 204 || body != "" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("204: got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ = readResp(t, br, "GET"); resp.Status != "418 I'm a teapot" {
		t.Errorf("418: got %q", resp.Status)
	}
	if resp, _ = readResp(t, br, "GET"); resp.StatusCode != 500 {
		t.Errorf("status 42: got %d, want 500", resp.StatusCode)
	}
}

// echoBody answers with the request body and its Content-Type.
func echoBody(c *Ctx) {
	if ct := c.Header("Content-Type"); ct != nil {
		_ = c.SetContentType(string(ct))
	}
	_, _ = c.Write(c.Body())
}

// TestRequestBodies: Content-Length and chunked bodies delivered whole,
// 100-continue, and 413 with a lingering close over MaxBody.
func TestRequestBodies(t *testing.T) {
	const maxBody = 64 << 10
	addr, _, srv := startHandler(t, Options{Handler: HandlerFunc(echoBody), MaxBody: maxBody})
	_ = srv
	big := bytes.Repeat([]byte("0123456789abcdef"), maxBody/16)
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: testkit.IOTimeout}, Timeout: testkit.IOTimeout}
	defer client.CloseIdleConnections()
	t.Run("content-length of MaxBody", func(t *testing.T) {
		resp, err := client.Post("http://"+addr+"/", "application/x-test", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, big) || resp.Header.Get("Content-Type") != "application/x-test" {
			t.Errorf("got %d, %d bytes (equal %v), %q", resp.StatusCode, len(b), bytes.Equal(b, big), resp.Header.Get("Content-Type"))
		}
	})
	t.Run("chunked, in pieces", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(big); i += 7000 {
				_, _ = pw.Write(big[i:min(i+7000, len(big))])
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", "http://"+addr+"/", pr) // no length: chunked
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, big) {
			t.Errorf("got %d, %d bytes", resp.StatusCode, len(b))
		}
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("hello"))
		req.Header.Set("Expect", "100-continue")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Errorf("got %d %q", resp.StatusCode, b)
		}
	})
	for _, tc := range []struct {
		name, head string
	}{
		{"content-length over MaxBody", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(maxBody+1) + "\r\n\r\n"},
		{"expect over MaxBody", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n"},
		{"chunked over MaxBody", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", maxBody) + string(big) + "\r\n1\r\nx\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := testkit.Dial(t, addr)
			br := bufio.NewReader(conn)
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = conn.Write(make([]byte, 8<<10)) }() // a client still sending
			resp, _ := readResp(t, br, "POST")
			if resp.StatusCode != 413 || !resp.Close {
				t.Errorf("got %d %v, want 413 and close", resp.StatusCode, resp.Header)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Errorf("after the 413: got %v, want a clean close (lingering, no reset)", err)
			}
		})
	}
}

// TestPipelinedHandler: responses to pipelined requests leave in order and
// in one write.
func TestPipelinedHandler(t *testing.T) {
	addr, _, _ := startHandler(t, Options{Handler: HandlerFunc(func(c *Ctx) { _, _ = c.Write(c.Path()) })})
	conn := testkit.Dial(t, addr)
	var reqs strings.Builder
	for i := 0; i < 16; i++ {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
	}
	if _, err := io.WriteString(conn, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := 0; i < 16; i++ {
		if _, body := readResp(t, br, "GET"); body != "/"+strconv.Itoa(i) {
			t.Fatalf("response %d: got %q", i, body)
		}
	}
}

// TestDeferred: a deferred response completed from a goroutine, in
// pipelined order with the sync responses behind it; a client that goes
// away is seen through the Context; completing for it is harmless; a
// streamed response is chunked.
func TestDeferred(t *testing.T) {
	gone := make(chan struct{}, 1)
	release := make(chan struct{})
	addr, l, srv := startHandler(t, Options{Handler: HandlerFunc(func(c *Ctx) {
		switch p := string(c.Path()); p {
		case "/slow":
			ms, _ := strconv.Atoi(string(must(c.Query("ms"))))
			d := c.Defer()
			go func() {
				time.Sleep(time.Duration(ms) * time.Millisecond)
				fmt.Fprintf(d, "slept %d", ms)
				d.Done()
			}()
		case "/wait":
			d := c.Defer()
			go func() {
				<-d.Context().Done()
				gone <- struct{}{}
				<-release
				_, _ = d.WriteString("too late")
				d.Done()
				d.Done() // twice: harmless
			}()
		case "/stream":
			d := c.Defer()
			go func() {
				for i := 0; i < 3; i++ {
					fmt.Fprintf(d, "piece %d;", i)
					d.Flush()
				}
				_, _ = d.WriteString("end")
				d.Done()
			}()
		default:
			_, _ = c.WriteString("fast " + p)
		}
	})})

	t.Run("pipelined order", func(t *testing.T) {
		conn := testkit.Dial(t, addr)
		io.WriteString(conn, "GET /slow?ms=100 HTTP/1.1\r\nHost: h\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /slow?ms=10 HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
		br := bufio.NewReader(conn)
		for _, want := range []string{"slept 100", "fast /a", "slept 10", "fast /b"} {
			if _, body := readResp(t, br, "GET"); body != want {
				t.Fatalf("got %q, want %q", body, want)
			}
		}
	})
	t.Run("streamed", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "piece 0;piece 1;piece 2;end" || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("got %q %v", b, resp.TransferEncoding)
		}
	})
	t.Run("client goes away", func(t *testing.T) {
		conn := testkit.Dial(t, addr)
		io.WriteString(conn, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
		testkit.WaitFor(t, "the request deferred", 5*time.Second, func() bool {
			return looptest.OnLoop(t, l, srv.Deferred) == 1
		})
		conn.Close()
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not see the client go")
		}
		close(release)
		testkit.WaitFor(t, "no deferred response left", 5*time.Second, func() bool {
			return looptest.OnLoop(t, l, srv.Deferred) == 0
		})
	})
	t.Run("a thousand at once", func(t *testing.T) {
		const n = 1000
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, testkit.IOTimeout)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testkit.IOTimeout))
				io.WriteString(c, "GET /slow?ms=200 HTTP/1.1\r\nHost: h\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(b) != "slept 200" {
					errs <- fmt.Errorf("got %d %q", resp.StatusCode, b)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("1000 deferred 200 ms requests took %v on one loop", d)
		}
	})
}

// TestDeferredDrain: a graceful stop waits for a deferred response and
// sends it with Connection: close.
func TestDeferredDrain(t *testing.T) {
	started := make(chan struct{})
	addr, l, _ := startHandler(t, Options{Handler: HandlerFunc(func(c *Ctx) {
		d := c.Defer()
		close(started)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, _ = d.WriteString("finished")
			d.Done()
		}()
	})})
	conn := testkit.Dial(t, addr)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-started
	l.Shutdown(10 * time.Second)
	resp, body := readResp(t, bufio.NewReader(conn), "GET")
	if body != "finished" || !resp.Close {
		t.Errorf("got %q %v, want the deferred body with Connection: close", body, resp.Header)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop after the deferred response")
	}
}

func must(b []byte, ok bool) []byte {
	if !ok {
		return nil
	}
	return b
}

// TestPathDecodeDoesNotTouchInput: decoding a pipelined request's path must
// not write into the input that holds the next request.
func TestPathDecodeDoesNotTouchInput(t *testing.T) {
	srv := New(Options{Handler: HandlerFunc(func(c *Ctx) { _, _ = c.Write(c.Path()) })})
	long := "/long/%61" + strings.Repeat("a", 40)
	in := []byte("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET " + long + " HTTP/1.1\r\nHost: h\r\n\r\nGET " + long + " HTTP/1.1\r\nHost: h\r\n\r\n")
	orig := string(in)
	var s connState
	out, _, nresp, _ := run(&s, srv, in)
	if nresp != 3 || string(in) != orig || strings.Count(string(out), "/long/a"+strings.Repeat("a", 40)) != 2 {
		t.Errorf("got %d responses, input changed %v, output %q", nresp, string(in) != orig, out)
	}
}

func loopConfig(srv *Server) loop.Config {
	return loop.Config{Handler: srv, LingerTimeout: time.Second}
}

func netDial(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, testkit.IOTimeout)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(testkit.IOTimeout))
	}
	return c, err
}

// TestAccessLog: one line per request, sync, deferred and error, written in
// a batch rather than a write per request.
func TestAccessLog(t *testing.T) {
	var logw lockedLog
	writes := 0
	counting := writerFunc(func(p []byte) (int, error) {
		writes++
		return logw.Write(p)
	})
	addr, l, srv := startHandler(t, Options{AccessLog: counting, Handler: HandlerFunc(func(c *Ctx) {
		if string(c.Path()) == "/later" {
			d := c.Defer()
			go func() { _, _ = d.WriteString("later"); d.Done() }()
			return
		}
		_, _ = c.WriteString("now")
	})})
	conn := testkit.Dial(t, addr)
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /a?x=\\y HTTP/1.1\r\nHost: h\r\n\r\nGET /later HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	readResp(t, br, "GET")
	readResp(t, br, "GET")
	readResp(t, br, "HEAD")
	io.WriteString(conn, "BAD\r\n\r\n")
	readResp(t, br, "GET")
	testkit.WaitFor(t, "the access log written", 5*time.Second, func() bool { return strings.Count(logw.String(), "\n") == 4 })
	lines := strings.Split(strings.TrimSpace(logw.String()), "\n")
	want := []string{`"GET /a?x=\x5cy HTTP/1.1" 200 3 `, `"GET /later HTTP/1.1" 200 5 `, `"HEAD /b HTTP/1.0" 200 0 `, `"-" 400 0 `}
	// A line is written when its response is ready: the HEAD, answered at
	// once but sent after the deferred response before it, is logged first.
	sort.Strings(want)
	var rest []string
	for i, line := range lines {
		f := strings.SplitN(line, " ", 3)
		if len(f) < 3 || !strings.HasPrefix(f[1], "127.0.0.1:") {
			t.Fatalf("line %d: got %q, want time, client, request...", i, line)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", f[0]); err != nil {
			t.Errorf("line %d: time %q: %v", i, f[0], err)
		}
		rest = append(rest, f[2][:strings.LastIndexByte(f[2], ' ')+1])
	}
	sort.Strings(rest)
	if strings.Join(rest, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", rest, want)
	}
	if n := looptest.OnLoop(t, l, func() int { return writes }); n > 2 {
		t.Errorf("%d writes for 4 lines, want them batched", n)
	}
	_ = srv
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
