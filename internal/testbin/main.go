// Command testbin is prefork with two extra protocols for the integration
// tests, registered through the public API a user's own main would use:
//
//	hang   echo, except that input containing "hang" blocks the loop forever
//	       (no more heartbeats: the master must abort and replace the worker)
//	crash  the worker exits with status 3 as it starts (a crash loop)
//	orphan the worker starts `sleep 0.2` and exits at once, orphaning it:
//	       a master running as PID 1 must reap it
//	greet  answers any input with its own flag --greeting (a program's
//	       flag, which must reach the workers through the re-exec)
//	leak   http (the greeting), except that every request answered keeps
//	       256 KiB the worker never frees: its RSS grows with the requests
//	       it serves (--max-worker-rss must recycle it)
//
// Built with -ldflags "-X main.brokenWorkers=yes", its http workers exit
// with status 3 as they start, while its master works: the new binary of an
// upgrade whose workers fail, which the master must roll back. With
// brokenWorkers=hang they hang as they start instead (never READY).
package main

import (
	"bytes"
	"os"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/prefork/prefork/app"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/proto/httpd"
	"github.com/prefork/prefork/wire"
)

type hang struct{ *echo.Handler }

type greet struct{ text []byte }

func (greet) OnOpen(*loop.Conn) {}
func (g greet) OnData(c *loop.Conn, in []byte) int {
	_, _ = c.Write(g.text)
	return len(in)
}
func (greet) OnClose(*loop.Conn, loop.CloseReason) {}

func (h hang) OnData(c *loop.Conn, in []byte) int {
	if bytes.Contains(in, []byte("hang")) {
		time.Sleep(24 * time.Hour)
	}
	return h.Handler.OnData(c, in)
}

// brokenWorkers, set with -ldflags -X, breaks the http protocol's workers.
var brokenWorkers string

// leak is the http greeting with a leak of leakPerRequest per request.
type leak struct {
	*httpd.Server
	kept [][]byte
}

const leakPerRequest = 256 << 10

func (l *leak) OnData(c *loop.Conn, in []byte) int {
	before := l.Requests()
	n := l.Server.OnData(c, in)
	for i := l.Requests() - before; i > 0; i-- {
		b := make([]byte, leakPerRequest)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1 // every page touched: resident, not just reserved
		}
		l.kept = append(l.kept, b)
	}
	return n
}

func main() {
	var extra []app.Protocol
	switch brokenWorkers {
	case "":
	case "hang":
		// Never READY, never a heartbeat: aborted after --worker-timeout.
		extra = append(extra, app.Protocol{Name: "http", Usage: "broken: hangs at start", IdleTimeout: 75 * time.Second,
			New: func(wire.Settings) loop.Handler { time.Sleep(24 * time.Hour); return nil }})
	default:
		extra = append(extra, app.Protocol{Name: "http", Usage: "broken: exits at start", IdleTimeout: 75 * time.Second,
			New: func(wire.Settings) loop.Handler { os.Exit(3); return nil }})
	}
	app.Main(append([]app.Protocol{
		app.Protocol{Name: "greet", Usage: "answers with --greeting",
			Flags: []cli.Flag{&cli.StringFlag{Name: "greeting", Value: "hello", Usage: "what greet answers"}},
			New:   func(s wire.Settings) loop.Handler { return greet{text: []byte(s.Flag("greeting"))} }},
		app.Protocol{Name: "hang", Usage: "echo that hangs on 'hang'", New: func(wire.Settings) loop.Handler { return hang{echo.New()} }},
		app.Protocol{Name: "leak", Usage: "http greeting that keeps 256 KiB per request", IdleTimeout: 75 * time.Second,
			New: func(wire.Settings) loop.Handler { return &leak{Server: httpd.New(httpd.Options{})} }},
		app.Protocol{Name: "crash", Usage: "exits at start", New: func(wire.Settings) loop.Handler { os.Exit(3); return nil }},
		app.Protocol{Name: "orphan", Usage: "orphans a child and exits at start", New: func(wire.Settings) loop.Handler {
			_ = exec.Command("sleep", "0.2").Start()
			os.Exit(3)
			return nil
		}},
	}, extra...)...)
}
