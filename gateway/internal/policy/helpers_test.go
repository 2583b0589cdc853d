package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// seen is what the test upstream received.
type seen struct {
	Path     string      `json:"path"`
	RawQuery string      `json:"rawQuery"`
	Header   http.Header `json:"header"`
}

// upstream is a real HTTP server that echoes what it received, and counts
// requests.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// proxyTo is a minimal reverse proxy to the upstream, standing in for the
// gateway's proxy handler.
func proxyTo(t *testing.T, u *upstream) http.Handler {
	t.Helper()
	target, err := url.Parse(u.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
}

// gateway compiles cfg (defaults applied), wraps route's policies around a
// proxy to a fresh upstream and serves it over real HTTP.
type gateway struct {
	set *Set
	up  *upstream
	srv *httptest.Server
}

func newGateway(t *testing.T, cfg *schemas.Config, route string, opts Options) *gateway {
	t.Helper()
	cfg.ApplyDefaults()
	set, err := Compile(cfg, nil, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	t.Cleanup(set.Close)
	up := newUpstream(t)
	srv := httptest.NewServer(set.Wrap(route, cfg.Routes[route].Policies, proxyTo(t, up)))
	t.Cleanup(srv.Close)
	return &gateway{set: set, up: up, srv: srv}
}

// result is a response and, when the upstream answered, what it saw.
type result struct {
	status int
	header http.Header
	body   string
	seen   *seen
}

func (g *gateway) do(t *testing.T, method, target string, header http.Header) result {
	t.Helper()
	req, err := http.NewRequest(method, g.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := result{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		var s seen
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("decoding upstream echo %q: %v", b, err)
		}
		res.seen = &s
	}
	return res
}

// routeCfg is a config with one route "r" attaching policies.
func routeCfg(policies map[string]schemas.Policy, attach ...string) *schemas.Config {
	return &schemas.Config{
		Routes:   map[string]schemas.Route{"r": {Policies: attach}},
		Policies: policies,
	}
}

func hashKey(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakeClock is a settable clock for rate limits and token times.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newTestServer serves h over real HTTP until the test ends.
func newTestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
