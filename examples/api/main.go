// Command api is a program on prefork's native HTTP API (package httpd): a
// Router with three routes, served under the same CLI as prefork itself —
// master, workers, signals, reloads, metrics and systemd support included.
//
//	go run ./examples/api serve --proto api --listen 127.0.0.1:8080
//
//	GET  /hello/{name}  200 {"hello":"<name>"}
//	POST /echo          the request body back, with its Content-Type
//	GET  /slow?ms=N     200 "slept N" after N ms (N <= 10000), deferred:
//	                    the loop goes on serving while it waits
//	anything else       404 (405 with Allow for a known path)
package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/prefork/prefork/app"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/httpd"
	"github.com/prefork/prefork/wire"
)

func main() {
	app.Main(app.Protocol{
		Name:        "api",
		Usage:       "the native HTTP API example: /hello/{name}, /echo, /slow?ms=N",
		IdleTimeout: 75 * time.Second,
		New:         newServer,
	})
}

// newServer builds one worker's HTTP server; the settings carry --max-body
// and --max-inflight.
func newServer(s wire.Settings) loop.Handler {
	r := httpd.NewRouter()
	r.GET("/hello/{name}", hello)
	r.POST("/echo", echo)
	r.GET("/slow", slow)
	return httpd.New(httpd.Options{Handler: r, MaxBody: s.MaxBody, MaxInflight: s.MaxInflight,
		AccessLog: s.AccessLogWriter()})
}

var jsonType = httpd.MustField("Content-Type", "application/json")

func hello(c *httpd.Ctx) {
	name, _ := json.Marshal(string(c.Param("name")))
	c.AddField(jsonType)
	_, _ = c.WriteString(`{"hello":`)
	_, _ = c.Write(name)
	_, _ = c.WriteString("}")
}

func echo(c *httpd.Ctx) {
	if ct := c.Header("Content-Type"); ct != nil {
		_ = c.SetContentType(string(ct))
	}
	_, _ = c.Write(c.Body())
}

func slow(c *httpd.Ctx) {
	v, _ := c.Query("ms")
	ms, err := strconv.Atoi(string(v))
	if err != nil || ms < 0 || ms > 10000 {
		c.SetStatus(400)
		_, _ = c.WriteString("want ?ms=N with 0 <= N <= 10000\n")
		return
	}
	// A timer, not a goroutine, waits: thousands of these cost a timer each.
	d := c.Defer()
	time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
		_, _ = d.WriteString("slept " + strconv.Itoa(ms))
		d.Done()
	})
}
