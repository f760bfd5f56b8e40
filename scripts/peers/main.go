// Command peers runs the servers that scripts/bench compares prefork with:
//
//	peers gnet-http        -addr 127.0.0.1:PORT -workers N   gnet v2, HTTP hello world
//	peers gnet-echo        -addr 127.0.0.1:PORT -workers N   gnet v2, echo
//	peers fasthttp-prefork -addr 127.0.0.1:PORT              fasthttp's prefork (children = GOMAXPROCS)
//	peers nethttp          -addr 127.0.0.1:PORT              Go's net/http
//
// It is its own module (prefork-bench-peers) so that the product's go.mod does
// not depend on gnet or fasthttp. scripts/bench sets GOMAXPROCS=WORKERS in the
// environment of every peer: gnet runs WORKERS event loops on WORKERS Ps,
// fasthttp's prefork starts runtime.GOMAXPROCS(0) children (each of which sets
// GOMAXPROCS to 1), and net/http runs on WORKERS Ps.
//
// Every HTTP server answers any request with 200, Content-Type text/plain and
// the body "Hello, World!" (13 bytes), like nginx's `return 200` and prefork's
// http protocol.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/prefork"
)

const hello = "Hello, World!"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peers gnet-http|gnet-echo|fasthttp-prefork|nethttp -addr HOST:PORT [-workers N]")
		os.Exit(2)
	}
	kind := os.Args[1]
	fs := flag.NewFlagSet(kind, flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "gnet event loops")
	_ = fs.Parse(os.Args[2:])

	if !prefork.IsChild() {
		log.Printf("%s: addr=%s workers=%d GOMAXPROCS=%d pid=%d", kind, *addr, *workers, runtime.GOMAXPROCS(0), os.Getpid())
	}
	var err error
	switch kind {
	case "gnet-http":
		err = gnet.Run(&gnetHTTP{}, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithNumEventLoop(*workers))
	case "gnet-echo":
		err = gnet.Run(&gnetEcho{}, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithNumEventLoop(*workers))
	case "fasthttp-prefork":
		s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			ctx.WriteString(hello) //nolint:errcheck
		}}
		err = prefork.New(s).ListenAndServe(*addr)
	case "nethttp":
		err = http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(hello)) //nolint:errcheck
		}))
	default:
		err = fmt.Errorf("unknown server %q", kind)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// date holds the current "Date: ..." header line, refreshed every second, as
// nginx, fasthttp and prefork cache theirs.
var date atomic.Pointer[[]byte]

func refreshDate() {
	b := time.Now().UTC().AppendFormat([]byte("Date: "), http.TimeFormat)
	b = append(b, "\r\n"...)
	date.Store(&b)
}

// gnetHTTP is gnet's http example reduced to what the benchmark needs: it
// finds the end of every complete request head ("\r\n\r\n") in the inbound
// buffer, answers each of them (pipelined requests included) in one write,
// and leaves an incomplete head in gnet's buffer for the next OnTraffic.
// Request bodies are not supported (the benchmark sends GETs).
type gnetHTTP struct {
	gnet.BuiltinEventEngine
}

func (*gnetHTTP) OnBoot(gnet.Engine) gnet.Action {
	refreshDate()
	go func() {
		for range time.Tick(time.Second) {
			refreshDate()
		}
	}()
	return gnet.None
}

func (*gnetHTTP) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(new([]byte)) // the connection's response buffer, reused
	return nil, gnet.None
}

var headEnd = []byte("\r\n\r\n")

func (*gnetHTTP) OnTraffic(c gnet.Conn) gnet.Action {
	in, _ := c.Peek(-1)
	out := c.Context().(*[]byte)
	resp := (*out)[:0]
	consumed := 0
	for {
		i := bytes.Index(in[consumed:], headEnd)
		if i < 0 {
			break
		}
		consumed += i + len(headEnd)
		resp = append(resp, "HTTP/1.1 200 OK\r\nServer: gnet\r\n"...)
		resp = append(resp, *date.Load()...)
		resp = append(resp, "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"+hello...)
	}
	if consumed == 0 {
		if len(in) > 8192 {
			return gnet.Close // a head over 8 KiB: not a client of this benchmark
		}
		return gnet.None
	}
	c.Discard(consumed) //nolint:errcheck
	c.Write(resp)       //nolint:errcheck
	*out = resp
	return gnet.None
}

// gnetEcho writes back every byte it reads, in order.
type gnetEcho struct {
	gnet.BuiltinEventEngine
}

func (*gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf) //nolint:errcheck
	return gnet.None
}
