//go:build !race

package h1

// raceEnabled is set when the tests run under the race detector, whose
// instrumentation allocates.
const raceEnabled = false
