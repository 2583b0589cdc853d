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

// childFunc is a Child that calls f.
type childFunc struct{ f func() }

func (c *childFunc) ParentCanceled() { c.f() }

// The core's route context registers with a request's context by this
// method set (proxy's adopter), naming no type of this package.
var _ interface {
	AddChild(interface{ ParentCanceled() })
	RemoveChild(interface{ ParentCanceled() }) bool
} = (*reqCtx)(nil)

// A child added to a request's context is told of its cancellation, once;
// one removed is not; one added after it is told at once; a context reset
// for the next request has none left.
func TestRequestContextChildren(t *testing.T) {
	t.Parallel()
	told := func() (*childFunc, chan struct{}) {
		ch := make(chan struct{}, 2)
		return &childFunc{f: func() { ch <- struct{}{} }}, ch
	}
	wait := func(t *testing.T, ch chan struct{}, want bool, what string) {
		t.Helper()
		select {
		case <-ch:
			if !want {
				t.Fatalf("%s: told, want not", what)
			}
		case <-time.After(200 * time.Millisecond):
			if want {
				t.Fatalf("%s: not told", what)
			}
		}
	}
	c := &reqCtx{parent: context.Background()}
	kept, keptCh := told()
	removed, removedCh := told()
	reset, resetCh := told()
	c.AddChild(reset)
	c.start() // the next request: its children are gone
	c.AddChild(kept)
	c.AddChild(removed)
	if !c.RemoveChild(removed) || c.RemoveChild(removed) {
		t.Fatal("RemoveChild: want true once, then false")
	}
	c.cancel()
	wait(t, keptCh, true, "added child")
	wait(t, keptCh, false, "added child, a second time")
	wait(t, removedCh, false, "removed child")
	wait(t, resetCh, false, "child of the previous request")
	late, lateCh := told()
	c.AddChild(late)
	wait(t, lateCh, true, "child added after the cancellation")
	if c.RemoveChild(kept) {
		t.Fatal("RemoveChild after the cancellation: want false")
	}
}
