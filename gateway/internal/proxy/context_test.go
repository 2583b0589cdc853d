package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// afterFuncParent is a cancelable context with its own AfterFunc, as the
// HTTP/1.1 server's request contexts are.
type afterFuncParent struct {
	context.Context
	funcs atomic.Int64 // registered and not stopped
}

func (p *afterFuncParent) AfterFunc(f func()) func() bool {
	p.funcs.Add(1)
	stop := context.AfterFunc(p.Context, f)
	return func() bool {
		if stop() {
			p.funcs.Add(-1)
			return true
		}
		return false
	}
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not canceled in 10s", what)
	}
}

// TestExchangeContext holds exchangeCtx to what package context's
// contexts promise, for each way it ends: the cause, Done, the watched
// connection's abort (run once, and not after Unwatch), contexts derived
// from it, and the watch on its parent ended with it.
func TestExchangeContext(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	cases := []struct {
		name      string
		custom    bool // the parent has its own AfterFunc
		end       func(c *exchangeCtx, cancelParent context.CancelCauseFunc)
		wantCause error
	}{
		{"route cancels with a cause", false, func(c *exchangeCtx, _ context.CancelCauseFunc) { c.cancel(errRouteTimeout) }, errRouteTimeout},
		{"route ends", false, func(c *exchangeCtx, _ context.CancelCauseFunc) { c.cancel(nil) }, context.Canceled},
		{"parent canceled with a cause", false, func(_ *exchangeCtx, p context.CancelCauseFunc) { p(errBoom) }, errBoom},
		{"custom parent canceled", true, func(_ *exchangeCtx, p context.CancelCauseFunc) { p(nil) }, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base, cancelBase := context.WithCancelCause(context.Background())
			defer cancelBase(nil)
			var parent context.Context = base
			var custom *afterFuncParent
			if c.custom {
				custom = &afterFuncParent{Context: base}
				parent = custom
			}
			var ex exchange
			var ctx exchangeCtx
			ctx.init(parent, &ex)
			if ctx.Value(exchangeKey{}) != &ex || ctx.Err() != nil || causeOf(&ctx) != nil {
				t.Fatal("a new exchangeCtx must carry its exchange and not be canceled")
			}
			var aborts, later atomic.Int64
			if !ctx.Watch(func() { aborts.Add(1) }) {
				t.Fatal("Watch refused on a live context")
			}
			if ctx.Watch(func() {}) {
				t.Fatal("a second Watch must be refused")
			}
			child, cancelChild := context.WithCancelCause(&ctx)
			defer cancelChild(nil)
			context.AfterFunc(&ctx, func() { later.Add(1) })
			stopped := context.AfterFunc(&ctx, func() { t.Error("a stopped AfterFunc ran") })
			if !stopped() {
				t.Fatal("stopping an AfterFunc of a live context must succeed")
			}

			c.end(&ctx, cancelBase)
			waitDone(t, &ctx, "the exchange context")
			waitDone(t, child, "a context derived from it")
			if got := causeOf(&ctx); got != c.wantCause {
				t.Errorf("cause %v, want %v", got, c.wantCause)
			}
			if ctx.Err() != context.Canceled {
				t.Errorf("Err %v, want context.Canceled", ctx.Err())
			}
			if aborts.Load() != 1 {
				t.Errorf("the watched connection was aborted %d times, want 1", aborts.Load())
			}
			if ctx.Unwatch() {
				t.Error("Unwatch after the abort ran must report false")
			}
			ctx.cancel(errBoom) // later cancels change nothing
			if got := causeOf(&ctx); got != c.wantCause {
				t.Errorf("a second cancel changed the cause to %v", got)
			}
			waitFor(t, "the AfterFunc", func() bool { return later.Load() == 1 })
			if custom != nil {
				waitFor(t, "the watch on the parent to end", func() bool { return custom.funcs.Load() == 0 || base.Err() != nil })
			}
		})
	}
}

// TestExchangeContextUnwatch: a watch removed before cancellation never
// runs, and the slot is free again.
func TestExchangeContextUnwatch(t *testing.T) {
	t.Parallel()
	var ex exchange
	var ctx exchangeCtx
	ctx.init(context.Background(), &ex)
	ran := false
	if !ctx.Watch(func() { ran = true }) || !ctx.Unwatch() {
		t.Fatal("Watch then Unwatch on a live context must both succeed")
	}
	if !ctx.Watch(func() {}) {
		t.Fatal("the slot must be free after Unwatch")
	}
	ctx.cancel(nil)
	if ran {
		t.Fatal("an unwatched abort ran")
	}
	if ctx.Watch(func() {}) {
		t.Fatal("Watch on a canceled context must be refused")
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed after cancel")
	}
}
