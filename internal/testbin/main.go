// Command testbin is prefork with two extra protocols for the integration
// tests, registered through the public API a user's own main would use:
//
//	hang   echo, except that input containing "hang" blocks the loop forever
//	       (no more heartbeats: the master must abort and replace the worker)
//	crash  the worker exits with status 3 as it starts (a crash loop)
//	orphan the worker starts `sleep 0.2` and exits at once, orphaning it:
//	       a master running as PID 1 must reap it
package main

import (
	"bytes"
	"os"
	"os/exec"
	"time"

	"github.com/prefork/prefork/app"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/echo"
	"github.com/prefork/prefork/wire"
)

type hang struct{ *echo.Handler }

func (h hang) OnData(c *loop.Conn, in []byte) int {
	if bytes.Contains(in, []byte("hang")) {
		time.Sleep(24 * time.Hour)
	}
	return h.Handler.OnData(c, in)
}

func main() {
	app.Main(
		app.Protocol{Name: "hang", Usage: "echo that hangs on 'hang'", New: func(wire.Settings) loop.Handler { return hang{echo.New()} }},
		app.Protocol{Name: "crash", Usage: "exits at start", New: func(wire.Settings) loop.Handler { os.Exit(3); return nil }},
		app.Protocol{Name: "orphan", Usage: "orphans a child and exits at start", New: func(wire.Settings) loop.Handler {
			_ = exec.Command("sleep", "0.2").Start()
			os.Exit(3)
			return nil
		}},
	)
}
