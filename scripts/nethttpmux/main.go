// Command nethttpmux serves the net/http example's handler (package
// examples/nethttp/mux, the very mux examples/nethttp runs under prefork
// through httpd.NetHTTP) on plain net/http: the other side of scripts/bench's
// adapter workload. It is part of the product module, standard library only
// besides that package.
//
//	GOMAXPROCS=2 nethttpmux -listen 127.0.0.1:8080
//
// It runs on as many Ps as GOMAXPROCS in the environment says (scripts/bench
// sets it to WORKERS, as for its other net/http peer) and has no timeouts,
// like http.ListenAndServe. SIGTERM or SIGINT end it.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"runtime"

	"github.com/prefork/prefork/examples/nethttp/mux"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "listen address")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.Printf("nethttpmux: listen=%s GOMAXPROCS=%d pid=%d", *listen, runtime.GOMAXPROCS(0), os.Getpid())
	s := &http.Server{Addr: *listen, Handler: mux.New()}
	log.Fatal(s.ListenAndServe())
}
