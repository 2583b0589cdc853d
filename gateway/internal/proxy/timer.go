package proxy

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// routeTimer is a reusable time.AfterFunc timer that cancels, with
// errRouteTimeout, the request it is armed for. Reusing it saves the timer
// and its closure, two allocations per request.
type routeTimer struct {
	t  *time.Timer
	st atomic.Pointer[requestState] // the armed request; nil when idle
}

var routeTimers = sync.Pool{New: func() any {
	rt := &routeTimer{}
	rt.t = time.AfterFunc(math.MaxInt64, rt.fire)
	rt.t.Stop()
	return rt
}}

func (rt *routeTimer) fire() {
	if st := rt.st.Load(); st != nil {
		st.cancel(errRouteTimeout)
	}
}

// armRouteTimer starts a route timer that calls st.cancel after d.
func armRouteTimer(st *requestState, d time.Duration) *routeTimer {
	rt := routeTimers.Get().(*routeTimer)
	rt.st.Store(st)
	rt.t.Reset(d)
	return rt
}

// release stops the timer and recycles it, unless it fired or was stopped
// already (a stream): then its callback may still be running, or it is not
// known whether it ran, and it is left to the garbage collector. It reports
// whether it stopped the timer (its callback then never runs).
func (rt *routeTimer) release() (stopped bool) {
	if rt.t.Stop() {
		rt.st.Store(nil)
		routeTimers.Put(rt)
		return true
	}
	return false
}
