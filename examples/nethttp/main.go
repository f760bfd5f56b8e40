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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prefork/prefork/app"
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
			return httpd.New(httpd.Options{Handler: httpd.NetHTTP(mux(), nil), MaxBody: s.MaxBody, MaxInflight: s.MaxInflight})
		},
	})
}

// mux is an ordinary net/http handler: nothing in it knows about prefork.
func mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(map[string]string{"hello": r.PathValue("name")})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	m.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		_, _ = io.Copy(w, r.Body)
	})
	m.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 10000 {
			http.Error(w, "want ?ms=N with 0 <= N <= 10000", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slept %d", ms)
	})
	return m
}
