// Command idleconns is the connection tool of scripts/bench (standard library
// only, part of the product module).
//
// Hold mode (default): open -n connections to an HTTP server, -c at a time,
// make one GET on each and read the whole response, then keep them all open
// and idle. It prints "READY open=N" once every connection has had its
// response, and waits for SIGUSR1 (or -hold to pass). Then it makes a second
// GET on every connection, to prove that the server kept them open, prints
// "ALIVE ok=N failed=M" and exits (1 if any failed).
//
// Hostile hold (-hostile slowloris|noread): as hold mode, but instead of a
// GET each connection sends a request head that never ends (slowloris: the
// start of a head, 64 bytes), or pipelines GETs until the server stops
// reading and never reads the answers (noread: up to -noread-bytes per
// connection). It prints "READY open=N", holds, and closes them all.
//
// Churn mode (-churn): -n connections, -c at a time, each one GET then close.
// It prints "DONE ok=N failed=M".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const request = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idleconns\r\n\r\n"

type conn struct {
	c  net.Conn
	br *bufio.Reader
}

// get makes one request on c and reads the whole response.
func (c *conn) get() error {
	if err := c.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c.c, request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 512)}, nil
}

// each runs f(i) for i in [0, n) on c goroutines and returns how many failed;
// the first error is printed.
func each(n, c int, f func(i int) error) int {
	var next, failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
					once.Do(func() { fmt.Fprintf(os.Stderr, "idleconns: connection %d: %v\n", i, err) })
				}
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "HTTP server address")
	n := flag.Int("n", 5000, "connections")
	c := flag.Int("c", 50, "connections opened (or, with -churn, in use) at a time")
	churn := flag.Bool("churn", false, "one request per connection, then close it")
	hold := flag.Duration("hold", 2*time.Minute, "longest time to hold the connections open")
	hostile := flag.String("hostile", "", "slowloris or noread: what each held connection sends instead of a GET")
	noreadBytes := flag.Int("noread-bytes", 256<<10, "with -hostile noread: pipelined requests sent per connection, in bytes")
	flag.Parse()
	switch *hostile {
	case "", "slowloris", "noread":
	default:
		fmt.Fprintf(os.Stderr, "idleconns: -hostile %q: want slowloris or noread\n", *hostile)
		os.Exit(2)
	}

	if *churn {
		failed := each(*n, *c, func(int) error {
			cn, err := dial(*addr)
			if err != nil {
				return err
			}
			defer cn.c.Close()
			return cn.get()
		})
		fmt.Printf("DONE ok=%d failed=%d\n", *n-failed, failed)
		if failed > 0 {
			os.Exit(1)
		}
		return
	}

	if *hostile != "" {
		holdHostile(*addr, *n, *c, *hostile, *noreadBytes, *hold)
		return
	}

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	conns := make([]*conn, *n)
	failed := each(*n, *c, func(i int) error {
		cn, err := dial(*addr)
		if err != nil {
			return err
		}
		conns[i] = cn
		return cn.get()
	})
	if failed > 0 {
		fmt.Printf("FAILED open=%d failed=%d\n", *n-failed, failed)
		os.Exit(1)
	}
	fmt.Printf("READY open=%d\n", *n)

	select {
	case <-usr1:
	case <-time.After(*hold):
	}
	failed = each(*n, *c, func(i int) error { return conns[i].get() })
	fmt.Printf("ALIVE ok=%d failed=%d\n", *n-failed, failed)
	for _, cn := range conns {
		cn.c.Close()
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// holdHostile opens n connections that each send what kind says, holds
// them until SIGUSR1 or hold has passed, and closes them.
func holdHostile(addr string, n, c int, kind string, noreadBytes int, hold time.Duration) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	head := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idleconns\r\nX-Slow: aaaaaaa")
	pipelined := []byte(strings.Repeat(request, 64))
	conns := make([]net.Conn, n)
	failed := each(n, c, func(i int) error {
		cn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		conns[i] = cn
		if kind == "slowloris" {
			_, err = cn.Write(head)
			return err
		}
		_ = cn.(*net.TCPConn).SetReadBuffer(4 << 10)
		for sent := 0; sent < noreadBytes; {
			// Until the server stops reading: the write then blocks.
			_ = cn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			k, err := cn.Write(pipelined)
			sent += k
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return nil
				}
				return err
			}
		}
		return nil
	})
	fmt.Printf("READY open=%d failed=%d\n", n-failed, failed)
	select {
	case <-usr1:
	case <-time.After(hold):
	}
	for _, cn := range conns {
		if cn != nil {
			cn.Close()
		}
	}
}
