//go:build race

package testkit

// Race is true when the tests run with the race detector: a binary they
// build should be built with it too.
const Race = true
