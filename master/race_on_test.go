//go:build race

package master_test

// raceEnabled: the test binary runs with the race detector, so the prefork
// binary under test is built with it too.
const raceEnabled = true
