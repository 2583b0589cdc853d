package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// backend is a real upstream that counts the requests it receives.
type backend struct {
	srv   *httptest.Server
	count atomic.Int64
	proxy http.Handler // a ReverseProxy to srv: the route the cache wraps
}

// newBackend starts a backend answering with h.
func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.count.Add(1)
		h(w, r)
	}))
	t.Cleanup(b.srv.Close)
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b.proxy = httputil.NewSingleHostReverseProxy(u)
	return b
}

// fixed answers every request with status, headers and body.
func fixed(status int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// clock is a settable time source for a Store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newStore returns a Store bounded to maxBytes on a clock of its own.
func newStore(t testing.TB, maxBytes int64) (*Store, *clock) {
	t.Helper()
	s, err := New(Options{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	s.now = c.now
	return s, c
}

// routes wraps next of each named route with its cache settings (defaults
// applied, as the runtime does) and retains exactly those routes, as an
// apply does. It returns the handlers by name.
func routes(t *testing.T, s *Store, specs map[string]schemas.Route, next map[string]http.Handler) map[string]http.Handler {
	t.Helper()
	cfg := schemas.Config{Routes: specs}
	cfg.ApplyDefaults()
	out := map[string]http.Handler{}
	var keep []string
	for name, spec := range cfg.Routes {
		h, ns := s.Wrap(name, spec, next[name])
		out[name] = h
		keep = append(keep, ns)
	}
	s.Retain(keep)
	return out
}

// route is a route with cache settings c.
func route(c schemas.RouteCache) schemas.Route {
	return schemas.Route{Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: "u", Weight: 100}}, Cache: &c}
}

// one wraps b's proxy with cache settings c as route "r".
func one(t *testing.T, s *Store, b *backend, c schemas.RouteCache) http.Handler {
	t.Helper()
	return routes(t, s, map[string]schemas.Route{"r": route(c)}, map[string]http.Handler{"r": b.proxy})["r"]
}

// do serves one request with method, target and header pairs on h.
func do(h http.Handler, method, target string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// ttl is a Duration of d.
func ttl(d time.Duration) schemas.Duration { return schemas.Duration(d) }
