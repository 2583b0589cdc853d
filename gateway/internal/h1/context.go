package h1

import (
	"context"
	"sync"
	"time"
)

// reqCtx is the context of one request, reused by the next request of the
// same pooled exchange unless it was canceled, so that the *http.Request (whose context cannot be
// set without a copy) is built once per exchange. It ends when the client
// is gone (a failed write); a request that ends
// normally leaves it alive and it is reset for the next. It implements
// AfterFunc, so a context.WithCancel child registers a callback instead of
// starting a goroutine to watch Done.
type reqCtx struct {
	parent context.Context // the server's base context, for Value

	mu       sync.Mutex
	done     chan struct{} // made on first Done, nil until then
	err      error
	children []Child // AddChild and AfterFunc registrations
}

// Child is a context derived from a request's that AddChild tells of the
// request's cancellation without a callback allocated per request: the
// core's route context, which every proxied request has. It is an alias,
// so that the core's interface, which names no type of this package,
// matches AddChild and RemoveChild.
type Child = interface{ ParentCanceled() }

// afterFunc is an AfterFunc registration, as a Child.
type afterFunc struct{ f func() }

// ParentCanceled runs the registered function.
func (a *afterFunc) ParentCanceled() { a.f() }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline reports none.
func (c *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the request is canceled.
func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err returns context.Canceled once the request is canceled.
func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value defers to the server's context.
func (c *reqCtx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc runs f in its own goroutine once c is canceled: a child
// (AddChild) that calls f.
func (c *reqCtx) AfterFunc(f func()) func() bool {
	a := &afterFunc{f: f}
	c.AddChild(a)
	return func() bool { return c.RemoveChild(a) }
}

// AddChild has ch.ParentCanceled run in its own goroutine once c is
// canceled (at once if it is), as AfterFunc, until RemoveChild.
func (c *reqCtx) AddChild(ch Child) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go ch.ParentCanceled()
		return
	}
	c.children = append(c.children, ch)
	c.mu.Unlock()
}

// RemoveChild undoes AddChild; it reports whether ch was still waiting.
func (c *reqCtx) RemoveChild(ch Child) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, g := range c.children {
		if g == ch {
			n := len(c.children) - 1
			copy(c.children[i:], c.children[i+1:])
			c.children[n] = nil // no reference kept past the request
			c.children = c.children[:n]
			return true
		}
	}
	return false
}

// cancel ends the request's context with context.Canceled.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	children := c.children
	c.children = nil
	c.mu.Unlock()
	for _, ch := range children {
		go ch.ParentCanceled()
	}
}

// start readies c, which was not canceled, for a new request.
func (c *reqCtx) start() {
	c.mu.Lock()
	clear(c.children)
	c.children = c.children[:0]
	c.mu.Unlock()
}

// canceled reports whether c was canceled. A canceled reqCtx is never
// reused: callbacks running late (the standard library's cancellation of
// child contexts runs in goroutines and reads Err) must find it canceled.
func (c *reqCtx) canceled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}
