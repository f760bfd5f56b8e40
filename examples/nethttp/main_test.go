package main

import (
	"testing"

	"github.com/prefork/prefork/examples/internal/routes"
)

func TestNetHTTP(t *testing.T) {
	routes.Check(t, "github.com/prefork/prefork/examples/nethttp", "nethttp")
}
