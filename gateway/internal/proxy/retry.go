package proxy

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// budget is Envoy's retry budget: retries in flight may be at most percent
// of the route's active requests, and perSecond retries per second are
// allowed regardless.
type budget struct {
	percent   int64
	perSecond int64
	now       func() time.Time
	inFlight  atomic.Int64
	second    atomic.Int64
	inSecond  atomic.Int64
}

// acquire reports whether one more retry may start; a granted retry must be
// released when its attempt ends.
func (b *budget) acquire(active int64) bool {
	for {
		cur := b.inFlight.Load()
		if (cur+1)*100 > b.percent*active {
			break
		}
		if b.inFlight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
	sec := b.now().Unix()
	if old := b.second.Load(); old != sec && b.second.CompareAndSwap(old, sec) {
		b.inSecond.Store(0)
	}
	if b.inSecond.Add(1) <= b.perSecond {
		b.inFlight.Add(1)
		return true
	}
	return false
}

func (b *budget) release() { b.inFlight.Add(-1) }

// backoff returns the wait before retry number try+1: exponential from
// BackoffBase, capped at BackoffMax, with jitter over its upper half.
func (rt *Route) backoff(try int) time.Duration {
	d := rt.retry.BackoffBase.D()
	for i := 0; i < try && d < rt.retry.BackoffMax.D(); i++ {
		d *= 2
	}
	d = min(d, rt.retry.BackoffMax.D())
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
