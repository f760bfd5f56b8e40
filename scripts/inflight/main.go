// Command inflight is the in-flight load tool of scripts/bench's adapter
// workload (standard library only, part of the product module).
//
// It opens -n connections to an HTTP server (-c dials at a time), writes one
// request on each (GET -path, by default /slow?ms=5000) and prints
//
//	SENT n=N
//
// once every request is written: from then on all N are in flight at the
// server at once (the script measures the server's memory then). It reads
// every response, checks that it is a 200 whose body is -want ("slept 5000"),
// and prints
//
//	DONE ok=N failed=M first_ms=... last_ms=...
//
// (the times from SENT to the first and the last response), exiting 1 if any
// connection, request or response failed or -timeout passed first. -n is
// bounded (at most 50000) and so is the whole run (-timeout).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const maxConns = 50000

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "HTTP server address")
	n := flag.Int("n", 2000, fmt.Sprintf("connections, one request each (1 to %d)", maxConns))
	c := flag.Int("c", 50, "connections dialled at a time")
	path := flag.String("path", "/slow?ms=5000", "request target")
	want := flag.String("want", "slept 5000", "the body every response must have (with status 200)")
	timeout := flag.Duration("timeout", 60*time.Second, "longest the whole run may take")
	flag.Parse()
	if *n < 1 || *n > maxConns || *c < 1 || *timeout <= 0 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "inflight: need 1 <= -n <= %d, -c >= 1, -timeout > 0 and no arguments\n", maxConns)
		os.Exit(2)
	}
	deadline := time.Now().Add(*timeout)
	request := "GET " + *path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: inflight\r\n\r\n"

	// Dial and write, -c at a time.
	conns := make([]net.Conn, *n)
	var next, failed atomic.Int64
	var once sync.Once
	fail := func(i int, err error) {
		failed.Add(1)
		once.Do(func() { fmt.Fprintf(os.Stderr, "inflight: connection %d: %v\n", i, err) })
	}
	var wg sync.WaitGroup
	for range min(*c, *n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				cn, err := net.DialTimeout("tcp", *addr, time.Until(deadline))
				if err == nil {
					conns[i] = cn
					if err = cn.SetDeadline(deadline); err == nil {
						_, err = io.WriteString(cn, request)
					}
				}
				if err != nil {
					fail(i, err)
				}
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	if f := failed.Load(); f > 0 {
		fmt.Printf("FAILED sent=%d failed=%d\n", int64(*n)-f, f)
		os.Exit(1)
	}
	sent := time.Now()
	fmt.Printf("SENT n=%d\n", *n)

	// Read every response.
	var first, last atomic.Int64 // ns after sent
	first.Store(int64(*timeout))
	for i, cn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := check(cn, *want); err != nil {
				fail(i, err)
				return
			}
			d := int64(time.Since(sent))
			for f := first.Load(); d < f && !first.CompareAndSwap(f, d); f = first.Load() {
			}
			for l := last.Load(); d > l && !last.CompareAndSwap(l, d); l = last.Load() {
			}
		}()
	}
	wg.Wait()
	f := failed.Load()
	fmt.Printf("DONE ok=%d failed=%d first_ms=%d last_ms=%d\n", int64(*n)-f, f,
		min(first.Load(), last.Load())/int64(time.Millisecond), last.Load()/int64(time.Millisecond))
	if f > 0 {
		os.Exit(1)
	}
}

// check reads one response from cn: status 200 and body want.
func check(cn net.Conn, want string) error {
	resp, err := http.ReadResponse(bufio.NewReaderSize(cn, 512), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(want))+512))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(b) != want {
		return fmt.Errorf("got %d %q, want 200 %q", resp.StatusCode, b, want)
	}
	return nil
}
