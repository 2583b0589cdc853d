package upstream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// BreakerState is the state of a circuit breaker.
type BreakerState int32

// Breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

// String names the state as status and metrics show it.
func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// Outcome is the result of one attempt as the breaker and the outlier
// detector see it.
type Outcome int

// Outcomes of an attempt.
const (
	// Success is a response that is not a gateway-class failure.
	Success Outcome = iota
	// Failure is a connect failure, a reset, a timeout or a 502/503/504.
	Failure
	// Ignored is an attempt that says nothing about the upstream (the client
	// went away, the request body was too large).
	Ignored
)

// ratioWindow is the tumbling window over which ErrorRatio is computed.
const ratioWindow = 10 * time.Second

// Breaker is a circuit breaker for one upstream: closed lets everything
// through, open refuses everything for OpenDuration, half-open lets
// HalfOpenRequests probes through and closes on the first success or opens
// again on a failure. A nil *Breaker always allows.
type Breaker struct {
	spec schemas.CircuitBreaker
	now  func() time.Time

	state       atomic.Int32
	consecutive atomic.Int64
	// Error ratio window, only counted when spec.ErrorRatio > 0.
	winStart atomic.Int64
	winTotal atomic.Int64
	winFail  atomic.Int64

	mu        sync.Mutex
	openUntil time.Time
	probes    int // half-open requests in flight
}

func newBreaker(spec *schemas.CircuitBreaker, now func() time.Time) *Breaker {
	if spec == nil {
		return nil
	}
	return &Breaker{spec: *spec, now: now}
}

// State returns the current state; an open breaker whose OpenDuration has
// passed reports half-open.
func (b *Breaker) State() BreakerState {
	if b == nil {
		return BreakerClosed
	}
	s := BreakerState(b.state.Load())
	if s == BreakerOpen {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.now().Before(b.openUntil) {
			return BreakerHalfOpen
		}
	}
	return s
}

// Allow reports whether one attempt may go to the upstream. Every allowed
// attempt must be followed by exactly one Record.
func (b *Breaker) Allow() bool {
	if b == nil || BreakerState(b.state.Load()) == BreakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().Before(b.openUntil) {
			return false
		}
		b.state.Store(int32(BreakerHalfOpen))
		b.probes = 0
	}
	if b.probes >= b.spec.HalfOpenRequests {
		return false
	}
	b.probes++
	return true
}

// Record reports the outcome of an attempt that Allow let through.
func (b *Breaker) Record(o Outcome) {
	if b == nil {
		return
	}
	if BreakerState(b.state.Load()) == BreakerClosed {
		b.recordClosed(o)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) != BreakerHalfOpen {
		// Closed or open again since the check: the outcome of an attempt
		// admitted earlier says nothing about the probe; drop it.
		return
	}
	if b.probes > 0 {
		b.probes--
	}
	switch o {
	case Success:
		b.consecutive.Store(0)
		b.resetWindow(b.now())
		b.state.Store(int32(BreakerClosed))
	case Failure:
		b.openLocked()
	}
}

func (b *Breaker) recordClosed(o Outcome) {
	switch o {
	case Ignored:
		return
	case Success:
		if b.consecutive.Load() != 0 {
			b.consecutive.Store(0)
		}
	case Failure:
		if b.consecutive.Add(1) >= int64(b.spec.ConsecutiveFailures) {
			b.trip()
			return
		}
	}
	if b.spec.ErrorRatio <= 0 {
		return
	}
	now := b.now()
	if start := b.winStart.Load(); now.UnixNano()-start > int64(ratioWindow) {
		if b.winStart.CompareAndSwap(start, now.UnixNano()) {
			b.winTotal.Store(0)
			b.winFail.Store(0)
		}
	}
	total := b.winTotal.Add(1)
	fails := b.winFail.Load()
	if o == Failure {
		fails = b.winFail.Add(1)
	}
	if total >= int64(b.spec.MinRequests) && float64(fails) >= b.spec.ErrorRatio*float64(total) {
		b.trip()
	}
}

func (b *Breaker) trip() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) == BreakerClosed {
		b.openLocked()
	}
}

func (b *Breaker) openLocked() {
	now := b.now()
	b.openUntil = now.Add(b.spec.OpenDuration.D())
	b.probes = 0
	b.consecutive.Store(0)
	b.resetWindow(now)
	b.state.Store(int32(BreakerOpen))
}

func (b *Breaker) resetWindow(now time.Time) {
	b.winStart.Store(now.UnixNano())
	b.winTotal.Store(0)
	b.winFail.Store(0)
}
