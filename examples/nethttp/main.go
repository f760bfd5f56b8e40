// Command nethttp serves a standard net/http ServeMux, unchanged, under
// prefork: each request runs on its own goroutine (httpd.NetHTTP), as it
// would under net/http, with the master, workers, reloads and metrics of
// prefork around it.
//
//	go run ./examples/nethttp serve --proto nethttp --listen 127.0.0.1:8080
//
//	GET  /hello/{name}  200 {"hello":"<name>"}
//	POST /echo          the request body back, with its Content-Type
//	GET  /slow?ms=N     200 "slept N" after a plain time.Sleep of N ms (N <= 10000)
package main

import (
	"time"

	"github.com/prefork/prefork/app"
	"github.com/prefork/prefork/examples/nethttp/mux"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/httpd"
	"github.com/prefork/prefork/wire"
)

func main() {
	app.Main(app.Protocol{
		Name:        "nethttp",
		Usage:       "the net/http example: an http.ServeMux under prefork",
		IdleTimeout: 75 * time.Second,
		New: func(s wire.Settings) loop.Handler {
			return httpd.New(httpd.Options{Handler: httpd.NetHTTP(mux.New(), nil), MaxBody: s.MaxBody, MaxInflight: s.MaxInflight,
				AccessLog: s.AccessLogWriter()})
		},
	})
}
