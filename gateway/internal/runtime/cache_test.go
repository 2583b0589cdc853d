package runtime

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/schemas"
)

// counting is an upstream that counts its requests and answers with a
// cacheable body naming itself.
func counting(t *testing.T, name string, n *atomic.Int64) *httptest.Server {
	return countingCC(t, name, n, "max-age=60")
}

// countingCC is counting with the Cache-Control cc.
func countingCC(t *testing.T, name string, n *atomic.Int64, cc string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", cc)
		_, _ = io.WriteString(w, name+" "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// getCache does a GET with headers and returns status, body and the
// Cache-Status header.
func getCache(t *testing.T, c *http.Client, url string, kv ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
}

func TestCacheRunsInsidePolicies(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	// public: behind an API key, only an answer the upstream marks
	// shareable is stored (TestCacheNeverSharesOneConsumersAnswer).
	up := countingCC(t, "u", &n, "public, max-age=60")
	sum := sha256.Sum256([]byte("secret"))
	r := route("/", to("u", 100))
	r.Cache = &schemas.RouteCache{}
	r.Policies = []string{"keys"}
	r.ResponseHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Served-By": "gitgate"}}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)},
		Routes:    map[string]schemas.Route{"r": r},
		Policies:  map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"c": "sha256:" + hex.EncodeToString(sum[:])}}}},
	})
	fe := front(t, e)
	c := fe.Client()
	if code, body, cs := getCache(t, c, fe.URL+"/a", "X-API-Key", "secret"); code != 200 || body != "u /a" || cs != "gitgate; fwd=uri-miss" {
		t.Fatalf("first: %d %q %q", code, body, cs)
	}
	if code, _, cs := getCache(t, c, fe.URL+"/a"); code != http.StatusUnauthorized || cs != "" {
		t.Errorf("without a key: %d %q, want 401 from the policy, not the cache", code, cs)
	}
	req, _ := http.NewRequest(http.MethodGet, fe.URL+"/a", nil)
	req.Header.Set("X-API-Key", "secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "u /a" || resp.Header.Get("Cache-Status") != "gitgate; hit; ttl=60" ||
		resp.Header.Get("X-Served-By") != "gitgate" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("hit: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

func TestApplyKeepsCacheOfUnchangedRoutes(t *testing.T) {
	t.Parallel()
	var na, nb atomic.Int64
	ua, ub := counting(t, "a", &na), counting(t, "b", &nb)
	cfg := func(ttlB time.Duration, extra bool) schemas.Config {
		ra, rb := route("/a", to("ua", 100)), route("/b", to("ub", 100))
		ra.Cache = &schemas.RouteCache{}
		rb.Cache = &schemas.RouteCache{TTL: schemas.Duration(ttlB)}
		c := schemas.Config{
			Upstreams: map[string]schemas.Upstream{"ua": ups(ua.URL), "ub": ups(ub.URL)},
			Routes:    map[string]schemas.Route{"a": ra, "b": rb},
		}
		if extra {
			c.Routes["other"] = route("/other", to("ua", 100))
		}
		return c
	}
	e := newEngine(t, Options{})
	mustApply(t, e, cfg(time.Minute, false))
	fe := front(t, e)
	c := fe.Client()
	getCache(t, c, fe.URL+"/a")
	getCache(t, c, fe.URL+"/b")
	if st := e.Status().Cache; st == nil || st.Entries != 2 || st.Bytes <= 0 || st.MaxBytes <= 0 {
		t.Fatalf("status cache %+v, want 2 entries", st)
	}
	// Route a is unchanged, route b's cache ttl changes, a route is added.
	mustApply(t, e, cfg(2*time.Minute, true))
	if _, _, cs := getCache(t, c, fe.URL+"/a"); cs != "gitgate; hit; ttl=60" {
		t.Errorf("unchanged route a: %q, want a hit", cs)
	}
	if _, _, cs := getCache(t, c, fe.URL+"/b"); cs != "gitgate; fwd=uri-miss" {
		t.Errorf("changed route b: %q, want a miss", cs)
	}
	if na.Load() != 1 || nb.Load() != 2 {
		t.Errorf("upstream a saw %d, b saw %d; want 1 and 2", na.Load(), nb.Load())
	}
	// A config without the cache drops its entries.
	noCache := cfg(2*time.Minute, true)
	ra := noCache.Routes["a"]
	ra.Cache = nil
	noCache.Routes["a"] = ra
	mustApply(t, e, noCache)
	if got := e.cache.Stats().Entries; got != 1 {
		t.Errorf("entries after route a lost its cache: %d, want 1", got)
	}
	// A refused apply changes nothing.
	bad := cfg(2*time.Minute, true)
	bad.Routes["bad"] = route("/x", to("nope", 100))
	if err := e.Apply(bundleOf(t, bad)); err == nil {
		t.Fatal("a config naming an unknown upstream was applied")
	}
	if got := e.cache.Stats().Entries; got != 1 {
		t.Errorf("entries after a refused apply: %d, want 1", got)
	}
}

func TestCacheKeepsPolicyHeadersPerRequest(t *testing.T) {
	t.Parallel()
	// The cors policy sets Access-Control-Allow-Origin for each request
	// before the cache; a hit must carry this request's, not the one of
	// the request whose response was stored.
	var n atomic.Int64
	up := counting(t, "u", &n)
	r := route("/", to("u", 100))
	r.Cache = &schemas.RouteCache{}
	r.Policies = []string{"cors"}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)},
		Routes:    map[string]schemas.Route{"r": r},
		Policies:  map[string]schemas.Policy{"cors": {CORS: &schemas.CORS{AllowOrigins: []string{"https://a.example", "https://b.example"}}}},
	})
	fe := front(t, e)
	for _, origin := range []string{"https://a.example", "https://b.example", "https://a.example"} {
		req, _ := http.NewRequest(http.MethodGet, fe.URL+"/x", nil)
		req.Header.Set("Origin", origin)
		resp, err := fe.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
			t.Errorf("Origin %s (%s): Access-Control-Allow-Origin %q", origin, resp.Header.Get("Cache-Status"), got)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

func TestCachedRouteObservedOnce(t *testing.T) {
	t.Parallel()
	// The cache wraps the writer between the observation and the route:
	// the route must still find the request's observation, so that a miss
	// is counted once, with its upstream, and a hit once, without one.
	var n atomic.Int64
	up := counting(t, "u", &n)
	r := route("/", to("u", 100))
	r.Cache = &schemas.RouteCache{}
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{Registry: reg})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)},
		Routes:    map[string]schemas.Route{"r": r},
	})
	fe := front(t, e)
	for range 3 {
		getCache(t, fe.Client(), fe.URL+"/x")
	}
	got := requestCounts(t, reg)
	maps.DeleteFunc(got, func(_ string, v float64) bool { return v == 0 })
	want := map[string]float64{"r/u/none/2xx": 1, "r/none/none/2xx": 2}
	if !maps.Equal(got, want) {
		t.Errorf("gitgate_requests_total = %v, want %v", got, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	cache := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "gitgate_cache_") {
			for _, m := range mf.GetMetric() {
				cache[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{"gitgate_cache_hits_total": 2, "gitgate_cache_misses_total": 1, "gitgate_cache_stores_total": 1, "gitgate_cache_entries": 1} {
		if cache[name] != v {
			t.Errorf("%s = %v, want %v", name, cache[name], v)
		}
	}
	if cache["gitgate_cache_bytes"] <= 0 {
		t.Errorf("gitgate_cache_bytes = %v", cache["gitgate_cache_bytes"])
	}
}

func TestWebSocketThroughCachedRoute(t *testing.T) {
	t.Parallel()
	// An upgrade on a cached route bypasses the cache and still switches.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}))
	t.Cleanup(up.Close)
	r := route("/", to("a", 100))
	r.Cache = &schemas.RouteCache{TTL: schemas.Duration(time.Minute)}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(up.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	_, _ = io.WriteString(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

// TestCacheNeverSharesOneConsumersAnswer: a route behind an identity
// policy whose credential is not in Authorization (an API key header or
// query parameter, a jwt in its own header) must not serve one consumer's
// stored answer to another, unless the upstream marks it shareable
// (public, s-maxage), as RFC 9111 §3.5 says of Authorization.
func TestCacheNeverSharesOneConsumersAnswer(t *testing.T) {
	t.Parallel()
	key := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	keys := map[string]string{"alice": key("alice-key"), "bob": key("bob-key")}
	for _, tc := range []struct {
		name       string
		policy     schemas.Policy
		cc         string // the upstream's Cache-Control
		alice, bob []string
		shared     bool
	}{
		{name: "api key in a header", policy: schemas.Policy{APIKey: &schemas.APIKey{Keys: keys, ConsumerHeader: "X-Consumer"}},
			cc: "max-age=60", alice: []string{"X-API-Key", "alice-key"}, bob: []string{"X-API-Key", "bob-key"}},
		{name: "api key in the query", policy: schemas.Policy{APIKey: &schemas.APIKey{In: "query", Name: "key", Keys: keys, ConsumerHeader: "X-Consumer"}},
			cc: "max-age=60", alice: []string{"?key=alice-key"}, bob: []string{"?key=bob-key"}},
		// The policy unescapes parameter names, so these consumers are
		// authenticated, and marked, whatever the spelling.
		{name: "api key under an escaped query name", policy: schemas.Policy{APIKey: &schemas.APIKey{In: "query", Name: "apikey", Keys: keys, ConsumerHeader: "X-Consumer"}},
			cc: "max-age=60", alice: []string{"?api%6Bey=alice-key"}, bob: []string{"?%61pikey=bob-key"}},
		{name: "public answers are shared", policy: schemas.Policy{APIKey: &schemas.APIKey{Keys: keys, ConsumerHeader: "X-Consumer"}},
			cc: "public, max-age=60", alice: []string{"X-API-Key", "alice-key"}, bob: []string{"X-API-Key", "bob-key"}, shared: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header().Set("Cache-Control", tc.cc)
				_, _ = io.WriteString(w, "account of "+r.Header.Get("X-Consumer"))
			}))
			t.Cleanup(up.Close)
			r := route("/", to("u", 100))
			r.Cache = &schemas.RouteCache{}
			r.Policies = []string{"id"}
			e := newEngine(t, Options{})
			mustApply(t, e, schemas.Config{
				Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)},
				Routes:    map[string]schemas.Route{"r": r},
				Policies:  map[string]schemas.Policy{"id": tc.policy},
			})
			fe := front(t, e)
			get := func(who []string) string {
				url, kv := fe.URL+"/me", []string(nil)
				if len(who) == 1 {
					url += who[0]
				} else {
					kv = who
				}
				code, body, _ := getCache(t, fe.Client(), url, kv...)
				if code != 200 {
					t.Fatalf("GET: %d %q", code, body)
				}
				return body
			}
			get(tc.alice)
			got := get(tc.bob)
			if !tc.shared && got != "account of bob" {
				t.Fatalf("bob got %q: another consumer's stored answer", got)
			}
			if tc.shared && (got != "account of alice" || n.Load() != 1) {
				t.Fatalf("bob got %q after %d upstream requests, want alice's public answer from the store", got, n.Load())
			}
		})
	}
}
