// Package mux is the handler of the net/http example: an ordinary
// http.ServeMux that knows nothing about prefork. examples/nethttp serves it
// under prefork (httpd.NetHTTP); scripts/nethttpmux serves the very same mux
// on plain net/http, for scripts/bench's adapter workload.
//
//	GET  /hello/{name}  200 {"hello":"<name>"}
//	POST /echo          the request body back, with its Content-Type
//	GET  /slow?ms=N     200 "slept N" after a plain time.Sleep of N ms (N <= 10000)
package mux

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// New returns a new mux with the three routes.
func New() *http.ServeMux {
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
