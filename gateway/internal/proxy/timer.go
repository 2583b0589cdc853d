package proxy

import (
	"math"
	"sync"
	"time"
)

// routeTimer cancels, with errRouteTimeout, the request it is armed for
// once the request's deadline passes. Its time.Timer is armed lazily, as
// the HTTP/1.1 server's client-gone watch is: arming for a request only
// records the deadline, and resets the timer only when it is idle or set
// to fire later than the deadline; releasing records that no request is
// armed, without stopping it. When the timer fires early (for an earlier
// request that ended) it sets itself for the deadline of the one armed
// now, and when none is, it stays idle. Under keep-alive load a pooled
// timer so fires about once per timeout instead of being reset and
// stopped on every request (a lock, a heap update and a clock read in
// the runtime each time).
type routeTimer struct {
	t *time.Timer

	mu       sync.Mutex
	st       *requestState // the armed request; nil when idle
	deadline time.Duration // clock() at which st is cancelled; 0: never
	at       time.Duration // clock() at which t fires, while pending
	pending  bool          // t will fire
	fired    bool          // st was cancelled by the timer
}

var routeTimers = sync.Pool{New: func() any { return newRouteTimer() }}

func newRouteTimer() *routeTimer {
	rt := &routeTimer{}
	rt.t = time.AfterFunc(math.MaxInt64, rt.fire)
	rt.t.Stop()
	return rt
}

// fire cancels the armed request if its deadline has passed, sets the
// timer for its deadline if not, and leaves the timer idle when no request
// is armed or its deadline was lifted.
func (rt *routeTimer) fire() {
	rt.mu.Lock()
	st := rt.st
	if st == nil || rt.deadline == 0 || rt.fired {
		rt.pending = false
		rt.mu.Unlock()
		return
	}
	if now := clock(); now < rt.deadline {
		rt.at = rt.deadline
		rt.t.Reset(rt.deadline - now)
		rt.mu.Unlock()
		return
	}
	rt.pending, rt.fired = false, true
	rt.mu.Unlock()
	// Outside the lock: release does not wait for it, and reports that
	// the timer fired, so that st is not recycled while this runs.
	st.cancel(errRouteTimeout)
}

// armRouteTimer returns a route timer that cancels st at deadline, a
// clock() value d after now (the caller's reading, so that arming reads
// no clock).
func armRouteTimer(st *requestState, now, d time.Duration) *routeTimer {
	rt := routeTimers.Get().(*routeTimer)
	rt.arm(st, now, d)
	return rt
}

// arm makes rt cancel st at now+d.
func (rt *routeTimer) arm(st *requestState, now, d time.Duration) {
	deadline := now + d
	rt.mu.Lock()
	rt.st, rt.deadline, rt.fired = st, deadline, false
	if !rt.pending || rt.at > deadline {
		rt.pending, rt.at = true, deadline
		rt.t.Reset(d)
	}
	rt.mu.Unlock()
}

// lift keeps the timer from cancelling its request (a stream, an upgrade:
// the route timeout bounds the wait for the answer's head only): its
// deadline becomes 0, never.
func (rt *routeTimer) lift() {
	rt.mu.Lock()
	rt.deadline = 0
	rt.mu.Unlock()
}

// release disarms the timer and recycles it. It reports whether the timer
// neither cancelled the request nor had its deadline lifted: then the
// timer's callback no longer refers to the request, which did not stream
// (a streamed request is never recycled). A callback that did cancel it
// may still be running; it no longer refers to the timer, which is
// recycled all the same.
func (rt *routeTimer) release() (stopped bool) {
	stopped = rt.disarm()
	routeTimers.Put(rt)
	return stopped
}

// disarm is release without the recycling.
func (rt *routeTimer) disarm() (stopped bool) {
	rt.mu.Lock()
	stopped = !rt.fired && rt.deadline != 0 // neither fired nor lifted
	rt.st, rt.deadline, rt.fired = nil, 0, false
	rt.mu.Unlock()
	return stopped
}
