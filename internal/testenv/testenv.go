// Package testenv decides what a test does when this machine cannot run it
// (a missing tool, no root, no IPv6 loopback): it skips, saying why, unless
// PREFORK_REQUIRE_TOOLS=1, which CI sets after installing what the tests need
// and running them as root; then the test fails instead, so nothing CI is
// meant to run is ever skipped there unnoticed.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Skip skips t with the reason, or fails it under PREFORK_REQUIRE_TOOLS=1.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv("PREFORK_REQUIRE_TOOLS") == "1" {
		t.Fatalf("cannot run here (%s) and PREFORK_REQUIRE_TOOLS=1", why)
	}
	t.Skip(why)
}
