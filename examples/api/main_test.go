package main

import (
	"testing"

	"github.com/prefork/prefork/examples/internal/routes"
)

func TestAPI(t *testing.T) { routes.Check(t, "github.com/prefork/prefork/examples/api", "api") }
