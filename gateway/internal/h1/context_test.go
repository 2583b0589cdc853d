package h1

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A child context of a request's context is canceled with it even when
// the exchange is reused for the next request right after: a canceled
// context is never reset (the standard library's cancellation of the
// child runs later, reads its parent's Err, and panics on nil).
func TestChildCanceledBeforeTheContextIsReused(t *testing.T) {
	t.Parallel()
	for range 200 {
		ex := newExchange(nil)
		ex.reset()
		c := ex.cctx
		child, cancel := context.WithCancelCause(c)
		c.cancel()
		ex.reset() // the next request
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the child was not canceled with its parent")
		}
		if err := child.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("child's Err %v, want canceled", err)
		}
		cancel(nil)
	}
}
