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
//
// Built with -ldflags "-X main.brokenWorkers=yes", its http workers exit
// with status 3 as they start, while its master works: the new binary of an
// upgrade whose workers fail, which the master must roll back.
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

func main() {
	var extra []app.Protocol
	if brokenWorkers != "" {
		extra = append(extra, app.Protocol{Name: "http", Usage: "broken: exits at start", IdleTimeout: 75 * time.Second,
			New: func(wire.Settings) loop.Handler { os.Exit(3); return nil }})
	}
	app.Main(append([]app.Protocol{
		app.Protocol{Name: "greet", Usage: "answers with --greeting",
			Flags: []cli.Flag{&cli.StringFlag{Name: "greeting", Value: "hello", Usage: "what greet answers"}},
			New:   func(s wire.Settings) loop.Handler { return greet{text: []byte(s.Flag("greeting"))} }},
		app.Protocol{Name: "hang", Usage: "echo that hangs on 'hang'", New: func(wire.Settings) loop.Handler { return hang{echo.New()} }},
		app.Protocol{Name: "crash", Usage: "exits at start", New: func(wire.Settings) loop.Handler { os.Exit(3); return nil }},
		app.Protocol{Name: "orphan", Usage: "orphans a child and exits at start", New: func(wire.Settings) loop.Handler {
			_ = exec.Command("sleep", "0.2").Start()
			os.Exit(3)
			return nil
		}},
	}, extra...)...)
}
