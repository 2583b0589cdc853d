package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
)

// exchangeCtx is a request's context inside the Route: canceled by the
// route timeout, by the Route when it returns, and when the request's own
// context ends. It carries the exchange, so the ReverseProxy hooks find it
// without a context.WithValue layer, and it lives in the request's
// Observation, so it costs no allocation of its own.
//
// It is its own cancelable context, not one of package context's, for the
// upstream pool's synchronous path: that path interrupts a connection
// blocked on a canceled request with a function it registers through
// upstream.Aborter, one slot here, where context.AfterFunc would cost an
// allocation, a closure and an entry in the parent's child map per
// exchange. Its cause is read with causeOf, never context.Cause (which
// sees only package context's own contexts).
type exchangeCtx struct {
	parent context.Context
	ex     *exchange
	// stopParent ends the watch on parent's cancellation; adopter is the
	// parent that watches for it instead, without a callback.
	stopParent func() bool
	adopter    adopter

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; nil until then
	err   error         // context.Canceled once canceled
	cause error
	abort func()   // the upstream connection to interrupt; see Watch
	funcs []func() // AfterFunc registrations
	// registered: AfterFunc was called (something outside may hold c);
	// detached: the first cancel, made by the Route, took c off its
	// parent before the parent could tell it. Both decide quiet.
	registered, detached bool
}

// init readies c as the child of parent carrying ex.
func (c *exchangeCtx) init(parent context.Context, ex *exchange) {
	*c = exchangeCtx{parent: parent, ex: ex}
	if parent.Done() == nil {
		return // never canceled
	}
	if a, ok := parent.(adopter); ok {
		c.adopter = a
		a.AddChild(c)
	} else if a, ok := parent.(interface{ AfterFunc(func()) func() bool }); ok {
		c.stopParent = a.AfterFunc(c.parentDone)
	} else {
		c.stopParent = context.AfterFunc(parent, c.parentDone)
	}
}

// adopter is a parent context that tells its children of its
// cancellation by a method (the HTTP/1.1 adapter's request context), where
// AfterFunc would cost a callback and a stop function per request.
type adopter interface {
	AddChild(interface{ ParentCanceled() })
	RemoveChild(interface{ ParentCanceled() }) bool
}

// parentDone cancels c with the parent's cause.
func (c *exchangeCtx) parentDone() { c.cancel(context.Cause(c.parent)) }

// ParentCanceled is parentDone, for an adopter.
func (c *exchangeCtx) ParentCanceled() { c.parentDone() }

// cancel cancels c with cause (nil: context.Canceled); only the first
// call counts. It interrupts the watched connection at once and runs the
// AfterFunc registrations before it returns.
func (c *exchangeCtx) cancel(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if cause == nil {
		cause = context.Canceled
	}
	c.cause = cause
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	abort, funcs := c.abort, c.funcs
	c.abort, c.funcs = nil, nil
	c.mu.Unlock()
	if abort != nil {
		abort()
	}
	// Package context registers its derived contexts here and cancels
	// them synchronously, as it cancels its own children.
	for _, f := range funcs {
		if f != nil { // nil: stopped
			f()
		}
	}
	detached := true
	if c.adopter != nil {
		detached = c.adopter.RemoveChild(c)
	} else if c.stopParent != nil {
		detached = c.stopParent()
	}
	c.mu.Lock()
	c.detached = detached
	c.mu.Unlock()
}

// quiet reports that nothing outside the Route holds c once it was
// canceled: no AfterFunc registration (package context's children, a
// transport's watch), no watched connection left, and the parent let go of
// it before it could call ParentCanceled or its AfterFunc (whose goroutine
// would run later).
func (c *exchangeCtx) quiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil && c.detached && !c.registered && c.abort == nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline is the parent's.
func (c *exchangeCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done returns a channel closed when c is canceled.
func (c *exchangeCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Err returns context.Canceled once c is canceled.
func (c *exchangeCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Cause returns what canceled c; nil while it is not.
func (c *exchangeCtx) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// Value returns the exchange for exchangeKey and
// upstream.InformationalKey, and defers to the parent otherwise.
func (c *exchangeCtx) Value(key any) any {
	switch key.(type) {
	case exchangeKey, upstream.InformationalKey:
		return c.ex
	}
	return c.parent.Value(key)
}

// AfterFunc runs f once c is canceled, in the canceling goroutine (package
// context uses it for the contexts derived from c, and for
// context.AfterFunc, whose own function it starts in a goroutine).
func (c *exchangeCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.registered = true
	c.funcs = append(c.funcs, f)
	i := len(c.funcs) - 1
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil || i >= len(c.funcs) || c.funcs[i] == nil {
			return false
		}
		c.funcs[i] = nil
		return true
	}
}

// Watch registers abort to run when c is canceled (upstream.Aborter). It
// reports false, registering nothing, when c is canceled already or holds
// another watch.
func (c *exchangeCtx) Watch(abort func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.abort != nil {
		return false
	}
	c.abort = abort
	return true
}

// Unwatch removes the watch; false when cancellation has run it already.
func (c *exchangeCtx) Unwatch() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abort == nil {
		return false
	}
	c.abort = nil
	return true
}

// causeOf returns what canceled ctx: the cause of an exchangeCtx, else
// context.Cause.
func causeOf(ctx context.Context) error {
	if c, ok := ctx.(*exchangeCtx); ok {
		return c.Cause()
	}
	return context.Cause(ctx)
}
