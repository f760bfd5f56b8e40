// Package routes tests the routes both HTTP examples serve, against the real
// program run by its own CLI: `serve --proto NAME`, two workers.
package routes

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testkit"
)

// Check builds the example at pkg, serves it with --proto proto and two
// workers, and checks its three routes, a 404, and 1,000 concurrent
// GET /slow?ms=200 answered well under a second of wall time in total.
func Check(t *testing.T, pkg, proto string) {
	bin := testkit.Build(t, pkg)
	p := testkit.Serve(t, bin, "--proto", proto, "--workers", "2")
	base := "http://" + p.Addr
	client := &http.Client{Timeout: testkit.IOTimeout}
	defer client.CloseIdleConnections()

	get := func(t *testing.T, method, path, ctype, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
		wantType                        string
	}{
		{"hello", "GET", "/hello/bob", "", "", 200, `{"hello":"bob"}`, "application/json"},
		{"hello escaped", "GET", "/hello/a%22b", "", "", 200, `{"hello":"a\"b"}`, "application/json"},
		{"echo", "POST", "/echo", "application/x-test", "some body", 200, "some body", "application/x-test"},
		{"slow", "GET", "/slow?ms=20", "", "", 200, "slept 20", ""},
		{"slow bad", "GET", "/slow?ms=20000", "", "", 400, "", ""},
		{"unknown", "GET", "/nope", "", "", 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := get(t, tc.method, tc.path, tc.ctype, tc.body)
			if code != tc.code || (tc.want != "" && body != tc.want) ||
				(tc.wantType != "" && hdr.Get("Content-Type") != tc.wantType) {
				t.Errorf("got %d %q %q, want %d %q %q", code, body, hdr.Get("Content-Type"), tc.code, tc.want, tc.wantType)
			}
		})
	}

	t.Run("sequential keep-alive latency", func(t *testing.T) {
		// One client, one request at a time: each answer must come at once.
		// A loop that kept the worker's only P in a blocking wait while a
		// handler goroutine or timer needed it answered each one ~10 ms
		// late (2 s for these 200).
		const n = 200
		c := testkit.Dial(t, p.Addr)
		br := bufio.NewReader(c)
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := io.WriteString(c, "GET /hello/x HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		took := time.Since(start)
		t.Logf("%d sequential requests on one connection: %v", n, took)
		if took > time.Second {
			t.Errorf("%d sequential requests took %v: answers are delayed", n, took)
		}
	})
	t.Run("1000 concurrent slow", func(t *testing.T) {
		const n = 1000
		conns := make([]net.Conn, n)
		for i := range conns {
			c, err := net.DialTimeout("tcp", p.Addr, testkit.IOTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(testkit.IOTimeout))
			conns[i] = c
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, c := range conns {
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				if _, err := io.WriteString(c, "GET /slow?ms=200 HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(b) != "slept 200" {
					errs <- fmt.Errorf("got %d %q", resp.StatusCode, b)
				}
			}(c)
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("%d concurrent GET /slow?ms=200 on 2 workers: all 200 in %v", n, took)
		// 200 ms of sleep each; the loop never blocks, so the whole batch
		// takes little more than one sleep. The bound leaves room for the
		// race detector and a busy CI machine.
		if took > 2*time.Second {
			t.Errorf("took %v: the loop blocked", took)
		}
	})
}
