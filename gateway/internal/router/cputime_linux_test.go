package router

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// rusageThread is RUSAGE_THREAD, absent from package syscall.
const rusageThread = 1

// threadCPU returns the CPU time used so far by the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU runs loop on one locked OS thread and reports the thread's CPU
// time per iteration as "cpu-ns/op". On a shared, loaded machine wall-clock
// ns/op counts the time the benchmark waited for a core; CPU time of the
// thread does not, so it is the figure to compare between runs.
func measureCPU(b *testing.B, loop func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	loop()
	if used := threadCPU() - start; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
