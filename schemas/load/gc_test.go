package load

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC checks the collector settings during one and two overlapping
// large loads and that the process's own settings come back. It changes
// process-wide settings, so it is not parallel.
func TestTuneGC(t *testing.T) {
	const big = 10 << 20 // a 10 MiB load wants a 640 MiB limit
	tests := []struct {
		name              string
		pct               int
		limit             int64
		wantPct           int
		wantOne, wantBoth int64
	}{
		{"defaults", 100, math.MaxInt64, gcPercent, 64 * big, 2 * 64 * big},
		{"higher gogc kept", 800, math.MaxInt64, 800, 64 * big, 2 * 64 * big},
		{"gogc off kept", -1, math.MaxInt64, -1, 64 * big, 2 * 64 * big},
		{"lower limit kept", 100, 300 << 20, gcPercent, 300 << 20, 300 << 20},
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(tt.pct)
			debug.SetMemoryLimit(tt.limit)
			check := func(when string, pct int, limit int64) {
				t.Helper()
				p := debug.SetGCPercent(-1)
				debug.SetGCPercent(p)
				if l := debug.SetMemoryLimit(-1); p != pct || l != limit {
					t.Errorf("%s: GOGC %d, limit %d; want %d, %d", when, p, l, pct, limit)
				}
			}
			small := tuneGC(1 << 10)
			check("small load", tt.pct, tt.limit)
			undo1 := tuneGC(big)
			check("one load", tt.wantPct, tt.wantOne)
			undo2 := tuneGC(big)
			check("two loads", tt.wantPct, tt.wantBoth)
			undo1()
			check("first load done", tt.wantPct, tt.wantOne)
			undo2()
			small()
			check("all done", tt.pct, tt.limit)
		})
	}
}
