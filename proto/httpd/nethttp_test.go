package httpd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
)

// lockedLog collects log output written from handler goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNetHTTPAdapter: a standard ServeMux with Go 1.22 patterns, a real
// *http.Request, streaming with Flush, a panic, promhttp, and a Context that
// ends when the client goes away.
func TestNetHTTPAdapter(t *testing.T) {
	var logs lockedLog
	gone := make(chan error, 1)
	reg := prometheus.NewRegistry()
	hits := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_hits_total", Help: "h"})
	reg.MustRegister(hits)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		hits.Inc()
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Id", r.PathValue("id"))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "id=%s q=%s host=%s ua=%s remote=%v len=%d body=%s proto=%s uri=%s",
			r.PathValue("id"), r.URL.Query().Get("q"), r.Host, r.Header.Get("User-Agent"),
			strings.HasPrefix(r.RemoteAddr, "127.0.0.1:"), r.ContentLength, b, r.Proto, r.RequestURI)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /sniff", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<!DOCTYPE html><html></html>"))
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			gone <- r.Context().Err()
		case <-time.After(10 * time.Second):
			gone <- nil
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := New(Options{Handler: NetHTTP(mux, slog.New(slog.NewTextHandler(&logs, nil))), MaxInflight: 100})
	addr, l := looptest.Start(t, loopConfig(srv))
	client := &http.Client{Timeout: testkit.IOTimeout}
	defer client.CloseIdleConnections()
	base := "http://" + addr

	resp, err := client.Post(base+"/items/42?q=x%20y", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "id=42 q=x y host=" + addr + " ua=Go-http-client/1.1 remote=true len=7 body=payload proto=HTTP/1.1 uri=/items/42?q=x%20y"
	if resp.StatusCode != 201 || string(b) != want || resp.Header.Get("X-Id") != "42" {
		t.Errorf("POST: got %d %q %v\nwant %q", resp.StatusCode, b, resp.Header, want)
	}
	for _, tc := range []struct{ path, body, ctype string }{
		{"/stream", "line 0\nline 1\nline 2\n", "text/plain; charset=utf-8"},
		{"/sniff", "<!DOCTYPE html><html></html>", "text/html; charset=utf-8"},
	} {
		resp, err := client.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.body || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: got %q %q", tc.path, b, resp.Header.Get("Content-Type"))
		}
		if tc.path == "/stream" && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
			t.Errorf("/stream: got transfer encoding %v, want chunked", resp.TransferEncoding)
		}
	}
	resp, err = client.Get(base + "/panic")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(logs.String(), "http handler panicked") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic: got %d, log %q", resp.StatusCode, logs.String())
	}
	resp, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "test_hits_total 1") {
		t.Errorf("promhttp: got %q", b)
	}
	resp, err = client.Get(base + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: got %d", resp.StatusCode)
	}

	// The client goes away: the handler's context ends.
	conn := testkit.Dial(t, addr)
	io.WriteString(conn, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	testkit.WaitFor(t, "the request in flight", 5*time.Second, func() bool { return looptest.OnLoop(t, l, srv.Deferred) == 1 })
	conn.Close()
	select {
	case err := <-gone:
		if err != context.Canceled {
			t.Errorf("handler context: got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never saw the client go")
	}
	testkit.WaitFor(t, "nothing in flight", 5*time.Second, func() bool { return looptest.OnLoop(t, l, srv.Deferred) == 0 })
}

// TestMaxInflight: past MaxInflight, a new request waits (its connection is
// not read) until one in flight is done; none is refused or lost.
func TestMaxInflight(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	started := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		started++
		mu.Unlock()
		<-release
		_, _ = io.WriteString(w, "done")
	})
	srv := New(Options{Handler: NetHTTP(mux, nil), MaxInflight: 2})
	addr, l := looptest.Start(t, loopConfig(srv))
	const n = 5
	results := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			c, err := netDial(addr)
			if err != nil {
				results <- err.Error()
				return
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			results <- string(b)
		}()
	}
	testkit.WaitFor(t, "two requests in flight", 5*time.Second, func() bool { return looptest.OnLoop(t, l, srv.Deferred) == 2 })
	testkit.WaitFor(t, "the other three connections held", 5*time.Second, func() bool {
		return looptest.OnLoop(t, l, func() int { return len(srv.held) }) == n-2
	})
	mu.Lock()
	if started != 2 {
		t.Errorf("with MaxInflight 2: %d handlers started", started)
	}
	mu.Unlock()
	close(release)
	for i := 0; i < n; i++ {
		if r := <-results; r != "done" {
			t.Errorf("request %d: got %q", i, r)
		}
	}
}
