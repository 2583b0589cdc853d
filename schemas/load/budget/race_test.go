//go:build race

package budget

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = true
