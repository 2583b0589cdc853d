package load

import (
	"runtime/debug"
	"sync"
)

// Loading a large config is a batch job that allocates about 130 bytes per
// input byte, most of it short-lived, and keeps about 25 bytes per input
// byte live until the end; with the default GOGC of 100 it collects often
// for little. For the duration of a large load the
// collector is therefore paced by a memory limit instead: GOGC is raised
// and the limit is set to a multiple of the input (never below a floor,
// never above a limit the process already had), so that it collects
// rarely but never lets the heap run away. Both settings are restored when
// the last concurrent load ends. Loads under gcTuneMinBytes change
// nothing. The settings are process-wide: other goroutines of the process
// see them during a large load too.
const (
	// gcTuneMinBytes is the input size from which a load tunes the GC.
	gcTuneMinBytes = 512 << 10
	// gcPercent is the GOGC used during a large load, unless the process
	// already runs with a higher value or with GOGC=off.
	gcPercent = 400
	// gcLimitPerByte and gcLimitFloor give the memory limit of a load:
	// about twice its live heap.
	gcLimitPerByte = 64
	gcLimitFloor   = 160 << 20
)

// gcTuner holds the settings of the process while loads are active.
type gcTuner struct {
	mu       sync.Mutex
	active   int
	want     int64 // sum of the memory limits wanted by active loads
	oldPct   int
	oldLimit int64
}

var gcTune gcTuner

// tuneGC adjusts the collector for a load of n input bytes and returns the
// function that undoes it.
func tuneGC(n int64) (restore func()) {
	if n < gcTuneMinBytes {
		return func() {}
	}
	want := max(gcLimitFloor, gcLimitPerByte*n)
	g := &gcTune
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active == 0 {
		g.oldPct = debug.SetGCPercent(100)
		debug.SetGCPercent(g.oldPct)
		g.oldLimit = debug.SetMemoryLimit(-1) // a negative input only reads it
	}
	g.active++
	g.want += want
	g.apply()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.active--
		g.want -= want
		if g.active == 0 {
			debug.SetGCPercent(g.oldPct)
			debug.SetMemoryLimit(g.oldLimit)
			return
		}
		g.apply()
	}
}

// apply sets the collector for the active loads; g.mu is held. GOGC=off
// (a negative percent) and higher percents of the process are kept, and so
// is a lower memory limit.
func (g *gcTuner) apply() {
	if g.oldPct >= 0 && g.oldPct < gcPercent {
		debug.SetGCPercent(gcPercent)
	}
	debug.SetMemoryLimit(min(g.oldLimit, g.want))
}
