package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// newState is a request's state with its context, for the timer tests.
func newState(t *testing.T) (*requestState, context.Context) {
	st := &requestState{}
	st.ctx.init(context.Background(), &st.ex)
	t.Cleanup(func() { st.cancel(nil) })
	return st, &st.ctx
}

// A timer armed again, after a release or after it fired, cancels only
// its new request, at the new request's deadline: earlier, later, or
// lifted.
func TestRouteTimerReuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first time.Duration // the first request's timeout
		fire  bool          // it times out (else it is released first)
		// second request
		second      time.Duration
		lift        bool // its deadline is lifted at once
		wantTimeout bool
	}{
		{name: "released, then a shorter deadline", first: time.Hour, second: time.Millisecond, wantTimeout: true},
		{name: "fired, then rearmed", first: time.Millisecond, fire: true, second: time.Millisecond, wantTimeout: true},
		{name: "released before its deadline, then a later one", first: 20 * time.Millisecond, second: time.Hour},
		{name: "fired, then a later one", first: time.Millisecond, fire: true, second: time.Hour},
		{name: "lifted", first: time.Hour, second: 100 * time.Millisecond, lift: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := newRouteTimer()
			st1, ctx1 := newState(t)
			rt.arm(st1, clock(), tc.first)
			if tc.fire {
				waitDone(t, ctx1, "first request")
			}
			if stopped := rt.disarm(); stopped == tc.fire {
				t.Fatalf("first release reported stopped %v, want %v", stopped, !tc.fire)
			}

			st2, ctx2 := newState(t)
			start := clock()
			rt.arm(st2, start, tc.second)
			if tc.lift {
				rt.lift()
			}
			if tc.wantTimeout {
				waitDone(t, ctx2, "second request")
				if got := causeOf(ctx2); !errors.Is(got, errRouteTimeout) {
					t.Fatalf("second request's cause %v, want the route timeout", got)
				}
				if late := clock() - start; late < tc.second {
					t.Fatalf("second request cancelled after %v, before its timeout %v", late, tc.second)
				}
			} else {
				// The timer fires once for what was armed first; it must
				// then set itself for the second request's deadline (or
				// stay idle for a lifted one), not cancel it.
				waitFor(t, "the timer's early fire", func() bool {
					rt.mu.Lock()
					defer rt.mu.Unlock()
					if tc.lift {
						return !rt.pending
					}
					return rt.pending && rt.at == start+tc.second
				})
				if err := ctx2.Err(); err != nil {
					t.Fatalf("second request cancelled before its deadline: %v", causeOf(ctx2))
				}
			}
			if stopped := rt.disarm(); stopped != (!tc.wantTimeout && !tc.lift) {
				t.Fatalf("second release reported stopped %v", stopped)
			}
			if !tc.fire && ctx1.Err() != nil {
				t.Fatalf("released first request was cancelled: %v", causeOf(ctx1))
			}
		})
	}
}

// Pooled route timers shared by concurrent requests with short and long
// deadlines cancel each request only at its own deadline.
func TestRouteTimersUnderConcurrentRequests(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 150 {
				st, ctx := newState(t)
				short := (g+i)%3 == 0
				d := time.Hour
				if short {
					d = 200 * time.Microsecond
				}
				rt := armRouteTimer(st, clock(), d)
				if short {
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
						t.Errorf("request with a 200µs timeout not cancelled in 5s")
						return
					}
				} else if err := ctx.Err(); err != nil {
					t.Errorf("request with a 1h timeout cancelled: %v", causeOf(ctx))
				}
				if stopped := rt.release(); stopped == short {
					t.Errorf("release reported stopped %v for a request that timed out: %v", stopped, short)
				}
				if short && !errors.Is(causeOf(ctx), errRouteTimeout) {
					t.Errorf("cause %v, want the route timeout", causeOf(ctx))
				}
			}
		})
	}
	wg.Wait()
}
