package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
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

// errBodyNotFit says a body is larger than the retry buffer.
var errBodyNotFit = errors.New("body larger than the retry buffer")

// readUpTo reads all of r when it has at most limit bytes; otherwise it
// returns the bytes read so far and errBodyNotFit.
func readUpTo(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if int64(len(buf)) > limit {
			return buf, errBodyNotFit
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), int(limit)+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return buf, errBodyNotFit
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errBodyTooLarge is returned by limitedBody past the route's limit.
var errBodyTooLarge = errors.New("request body too large")

// limitedBody enforces MaxBodyBytes and remembers that it did, and whether
// reading the client's body failed (a malformed chunk, a truncated body);
// the flags are read after the transport's writer goroutine has used the
// body.
type limitedBody struct {
	rc       io.ReadCloser
	left     int64
	exceeded atomic.Bool
	broken   atomic.Bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) > l.left {
		l.exceeded.Store(true)
		n = int(l.left)
		l.left = -1
		return n, errBodyTooLarge
	}
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.broken.Store(true)
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// clientAddr returns the client's address and whether the peer is a
// trusted proxy; behind trusted proxies the client is the right-most
// untrusted address of X-Forwarded-For.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap()
	if !inPrefixes(peer, trusted) {
		return peer, false
	}
	xff := r.Header["X-Forwarded-For"]
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client, true
			}
			client = a.Unmap()
			if !inPrefixes(client, trusted) {
				return client, true
			}
		}
	}
	return client, true
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pickBackend draws the weighted backend, by a hash of the split
// attribute when the route is sticky.
func (rt *Route) pickBackend(r *http.Request) *backend {
	if len(rt.backends) == 1 {
		return rt.backends[0]
	}
	var draw int
	if rt.split != nil {
		client, _ := clientAddr(r, rt.opts.TrustedProxies)
		draw = int(upstream.Key(r, rt.split, client) % 100)
	} else {
		draw = rand.IntN(100)
	}
	for i := range rt.backends {
		if draw < rt.backends[i].upTo {
			return rt.backends[i]
		}
	}
	return rt.backends[len(rt.backends)-1]
}
