package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

func TestHitsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	b := newBackend(t, fixed(200, "hello", "Cache-Control", "max-age=60", "Content-Type", "text/plain"))
	h := one(t, s, b, schemas.RouteCache{})

	first := do(h, "GET", "http://a.example/x?q=1")
	if first.Code != 200 || first.Body.String() != "hello" {
		t.Fatalf("first: %d %q", first.Code, first.Body)
	}
	if got := first.Header().Get(StatusHeader); got != "gitgate; fwd=uri-miss" {
		t.Errorf("first Cache-Status = %q", got)
	}
	for i := range 20 {
		w := do(h, "GET", "http://a.example/x?q=1")
		if w.Code != 200 || w.Body.String() != "hello" || w.Header().Get("Content-Type") != "text/plain" {
			t.Fatalf("hit %d: %d %q %v", i, w.Code, w.Body, w.Header())
		}
		if got := w.Header().Get(StatusHeader); got != "gitgate; hit; ttl=60" {
			t.Errorf("hit Cache-Status = %q", got)
		}
		if got := w.Header().Get("Age"); got != "0" {
			t.Errorf("hit Age = %q", got)
		}
	}
	head := do(h, "HEAD", "http://a.example/x?q=1")
	if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != "5" {
		t.Errorf("HEAD from the GET entry: %d %q %v", head.Code, head.Body, head.Header())
	}
	if n := b.count.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	// Another query, another host: other keys.
	do(h, "GET", "http://a.example/x?q=2")
	do(h, "GET", "http://b.example/x?q=1")
	if n := b.count.Load(); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
}

func TestAgeAndExpiry(t *testing.T) {
	t.Parallel()
	s, clk := newStore(t, 0)
	b := newBackend(t, fixed(200, "x", "Cache-Control", "max-age=10", "Age", "3"))
	h := one(t, s, b, schemas.RouteCache{})
	do(h, "GET", "/a")
	clk.advance(4 * time.Second)
	w := do(h, "GET", "/a")
	if w.Header().Get("Age") != "7" || w.Header().Get(StatusHeader) != "gitgate; hit; ttl=3" {
		t.Errorf("hit after 4s: Age %q, %q", w.Header().Get("Age"), w.Header().Get(StatusHeader))
	}
	clk.advance(3 * time.Second)
	w = do(h, "GET", "/a")
	if got := w.Header().Get(StatusHeader); got != "gitgate; fwd=stale" {
		t.Errorf("expired: %q", got)
	}
	if n := b.count.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

func TestResponseCacheability(t *testing.T) {
	t.Parallel()
	past := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	later := time.Date(2026, 12, 6, 12, 5, 0, 0, time.UTC).Format(http.TimeFormat)
	tests := []struct {
		name   string
		cache  schemas.RouteCache
		status int
		body   string
		hdr    []string
		stored bool
	}{
		{"max-age", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60"}, true},
		{"no freshness, no ttl", schemas.RouteCache{}, 200, "x", nil, false},
		{"no freshness, route ttl", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", nil, true},
		{"no-store", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Cache-Control", "no-store, max-age=60"}, false},
		{"private", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Cache-Control", "private, max-age=60"}, false},
		{"private with fields", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", `private="Set-Cookie, X-A", max-age=60`}, false},
		{"no-cache", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Cache-Control", "no-cache, max-age=60"}, false},
		{"s-maxage wins over max-age=0", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=0, s-maxage=60"}, true},
		{"s-maxage=0 wins over max-age", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "s-maxage=0, max-age=60"}, false},
		{"max-age=0", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Cache-Control", "max-age=0"}, false},
		{"bad max-age counts as stale", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Cache-Control", "max-age=ten"}, false},
		{"max-age twice counts as stale", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60", "Cache-Control", "max-age=30"}, false},
		{"two lines", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "public", "Cache-Control", "max-age=60"}, true},
		{"upper case", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "MAX-AGE=60"}, true},
		{"Expires after Date", schemas.RouteCache{}, 200, "x", []string{"Date", now, "Expires", later}, true},
		{"Expires before Date", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Date", now, "Expires", past}, false},
		{"invalid Expires", schemas.RouteCache{TTL: ttl(time.Minute)}, 200, "x", []string{"Expires", "0"}, false},
		{"max-age over Expires", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60", "Date", now, "Expires", past}, true},
		{"Set-Cookie", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}, false},
		{"Vary star", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60", "Vary", "*"}, false},
		{"Age over max-age", schemas.RouteCache{}, 200, "x", []string{"Cache-Control", "max-age=60", "Age", "60"}, false},
		{"404 with ttl", schemas.RouteCache{TTL: ttl(time.Minute)}, 404, "x", nil, true},
		{"410 with max-age", schemas.RouteCache{}, 410, "x", []string{"Cache-Control", "max-age=60"}, true},
		{"204 with ttl", schemas.RouteCache{TTL: ttl(time.Minute)}, 204, "", nil, true},
		{"301 with ttl", schemas.RouteCache{TTL: ttl(time.Minute)}, 301, "", []string{"Location", "/b"}, true},
		{"302 with ttl only", schemas.RouteCache{TTL: ttl(time.Minute)}, 302, "", []string{"Location", "/b"}, false},
		{"302 with max-age", schemas.RouteCache{}, 302, "", []string{"Location", "/b", "Cache-Control", "max-age=60"}, true},
		{"500 with max-age", schemas.RouteCache{}, 500, "x", []string{"Cache-Control", "max-age=60"}, false},
		{"503 with ttl", schemas.RouteCache{TTL: ttl(time.Minute)}, 503, "x", nil, false},
		{"206", schemas.RouteCache{}, 206, "x", []string{"Cache-Control", "max-age=60", "Content-Range", "bytes 0-0/10"}, false},
		{"body over maxEntryBytes", schemas.RouteCache{MaxEntryBytes: 4}, 200, "hello", []string{"Cache-Control", "max-age=60"}, false},
		{"body at maxEntryBytes", schemas.RouteCache{MaxEntryBytes: 5}, 200, "hello", []string{"Cache-Control", "max-age=60"}, true},
		{"maxTtl caps max-age", schemas.RouteCache{MaxTTL: ttl(time.Second)}, 200, "x", []string{"Cache-Control", "max-age=60"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, clk := newStore(t, 0)
			b := newBackend(t, fixed(tt.status, tt.body, tt.hdr...))
			h := one(t, s, b, tt.cache)
			first := do(h, "GET", "/p")
			if first.Code != tt.status || first.Body.String() != tt.body {
				t.Fatalf("first answer %d %q, want %d %q", first.Code, first.Body, tt.status, tt.body)
			}
			second := do(h, "GET", "/p")
			if second.Code != tt.status || second.Body.String() != tt.body {
				t.Fatalf("second answer %d %q, want %d %q", second.Code, second.Body, tt.status, tt.body)
			}
			want := int64(2)
			if tt.stored {
				want = 1
			}
			if n := b.count.Load(); n != want {
				t.Errorf("upstream saw %d requests, want %d (stored: %v)", n, want, tt.stored)
			}
			if tt.name == "maxTtl caps max-age" {
				clk.advance(time.Second)
				do(h, "GET", "/p")
				if n := b.count.Load(); n != 2 {
					t.Errorf("after maxTtl: upstream saw %d requests, want 2", n)
				}
			}
		})
	}
}

func TestRequestDirectives(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		hdr       []string
		advance   time.Duration // between the stored response and the request
		wantCode  int
		wantUp    int64  // upstream requests in all, the first included
		wantCache string // the request's Cache-Status
		storedNow bool   // a plain request afterwards is a hit on a new entry
	}{
		{"plain", nil, 0, 200, 1, "gitgate; hit; ttl=60", false},
		{"no-cache", []string{"Cache-Control", "no-cache"}, 0, 200, 2, "gitgate; fwd=request", true},
		{"Pragma no-cache", []string{"Pragma", "no-cache"}, 0, 200, 2, "gitgate; fwd=request", true},
		{"Cache-Control wins over Pragma", []string{"Pragma", "no-cache", "Cache-Control", "max-age=600"}, 0, 200, 1, "gitgate; hit; ttl=60", false},
		{"max-age=0", []string{"Cache-Control", "max-age=0"}, 0, 200, 2, "gitgate; fwd=request", true},
		{"max-age older than entry", []string{"Cache-Control", "max-age=20"}, 10 * time.Second, 200, 1, "gitgate; hit; ttl=50", false},
		{"max-age younger than entry", []string{"Cache-Control", "max-age=5"}, 10 * time.Second, 200, 2, "gitgate; fwd=request", true},
		{"no-store is served", []string{"Cache-Control", "no-store"}, 0, 200, 1, "gitgate; hit; ttl=60", false},
		{"only-if-cached hit", []string{"Cache-Control", "only-if-cached"}, 0, 200, 1, "gitgate; hit; ttl=60", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, clk := newStore(t, 0)
			b := newBackend(t, fixed(200, "x", "Cache-Control", "max-age=60"))
			h := one(t, s, b, schemas.RouteCache{})
			do(h, "GET", "/p")
			clk.advance(tt.advance)
			w := do(h, "GET", "/p", tt.hdr...)
			if w.Code != tt.wantCode || w.Header().Get(StatusHeader) != tt.wantCache {
				t.Errorf("answer %d %q, want %d %q", w.Code, w.Header().Get(StatusHeader), tt.wantCode, tt.wantCache)
			}
			if n := b.count.Load(); n != tt.wantUp {
				t.Errorf("upstream saw %d requests, want %d", n, tt.wantUp)
			}
			after := do(h, "GET", "/p")
			if got := after.Header().Get("Age"); tt.storedNow && got != "0" {
				t.Errorf("the response fetched was not stored: Age %q", got)
			}
		})
	}
}

func TestRequestsNotStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		hdr     []string
		cache   schemas.RouteCache
		want    int    // status of the first request
		wantCS  string // its Cache-Status
		counted bool   // a plain GET afterwards still reaches the upstream
	}{
		{"no-store miss", "GET", []string{"Cache-Control", "no-store"}, schemas.RouteCache{}, 200, "gitgate; fwd=uri-miss", true},
		{"only-if-cached miss", "GET", []string{"Cache-Control", "only-if-cached"}, schemas.RouteCache{}, 504, "", true},
		{"HEAD miss", "HEAD", nil, schemas.RouteCache{}, 200, "gitgate; fwd=uri-miss", true},
		{"conditional miss", "GET", []string{"If-None-Match", `"v1"`}, schemas.RouteCache{}, 200, "gitgate; fwd=uri-miss", true},
		{"Range", "GET", []string{"Range", "bytes=0-1"}, schemas.RouteCache{}, 200, "gitgate; fwd=bypass", true},
		{"POST", "POST", nil, schemas.RouteCache{}, 200, "gitgate; fwd=bypass", true},
		{"HEAD not cached", "HEAD", nil, schemas.RouteCache{Methods: []string{"GET"}}, 200, "gitgate; fwd=bypass", true},
		{"plain miss", "GET", nil, schemas.RouteCache{}, 200, "gitgate; fwd=uri-miss", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, fixed(200, "x", "Cache-Control", "max-age=60", "ETag", `"v1"`))
			h := one(t, s, b, tt.cache)
			w := do(h, tt.method, "/p", tt.hdr...)
			if w.Code != tt.want || w.Header().Get(StatusHeader) != tt.wantCS {
				t.Fatalf("answer %d %q, want %d %q", w.Code, w.Header().Get(StatusHeader), tt.want, tt.wantCS)
			}
			before := b.count.Load()
			method := "GET"
			if tt.cache.Methods != nil {
				method = tt.cache.Methods[0]
			}
			do(h, method, "/p")
			if reached := b.count.Load() > before; reached != tt.counted {
				t.Errorf("plain %s afterwards reached the upstream: %v, want %v", method, reached, tt.counted)
			}
		})
	}
}

func TestConditionalHit(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	lm := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := newBackend(t, fixed(200, "body", "Cache-Control", "max-age=60", "ETag", `W/"v1"`, "Last-Modified", lm.Format(http.TimeFormat)))
	h := one(t, s, b, schemas.RouteCache{})
	do(h, "GET", "/p")
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"etag matches", []string{"If-None-Match", `"v0", W/"v1"`}, 304},
		{"etag star", []string{"If-None-Match", `*`}, 304},
		{"etag differs", []string{"If-None-Match", `"v2"`}, 200},
		{"not modified since", []string{"If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"modified since", []string{"If-Modified-Since", lm.Add(-time.Hour).Format(http.TimeFormat)}, 200},
		{"If-None-Match wins", []string{"If-None-Match", `"v2"`, "If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, 200},
	}
	for _, tt := range tests {
		w := do(h, "GET", "/p", tt.hdr...)
		if w.Code != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == 304 && w.Body.Len() != 0 {
			t.Errorf("%s: 304 with a body %q", tt.name, w.Body)
		}
	}
	if n := b.count.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

func TestVaryVariants(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language, x-variant")
		fmt.Fprintf(w, "lang=%s enc=%s", r.Header.Get("Accept-Language"), r.Header.Get("X-Variant"))
	})
	h := one(t, s, b, schemas.RouteCache{})
	reqs := []struct{ lang, enc string }{
		{"en", "gzip"}, {"fr", "gzip"}, {"en", "gzip"}, {"en", ""}, {"fr", "gzip"}, {"en", ""},
	}
	for _, rq := range reqs {
		var hdr []string
		if rq.lang != "" {
			hdr = append(hdr, "Accept-Language", rq.lang)
		}
		if rq.enc != "" {
			hdr = append(hdr, "X-Variant", rq.enc)
		}
		w := do(h, "GET", "/p", hdr...)
		if want := "lang=" + rq.lang + " enc=" + rq.enc; w.Body.String() != want {
			t.Errorf("%v: body %q, want %q", rq, w.Body, want)
		}
	}
	if n := b.count.Load(); n != 3 {
		t.Errorf("upstream saw %d requests, want 3 (one per variant)", n)
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cc         string
		authFirst  bool // the first request carries Authorization
		wantUp     int64
		secondAuth bool // the second request carries Authorization
	}{
		{"authorized max-age not stored", "max-age=60", true, 2, true},
		{"authorized public stored", "public, max-age=60", true, 1, true},
		{"authorized s-maxage stored", "s-maxage=60", true, 1, true},
		{"authorized must-revalidate stored", "must-revalidate, max-age=60", true, 1, true},
		{"authorized public served anonymous", "public, max-age=60", true, 1, false},
		{"anonymous entry not served to authorized", "max-age=60", false, 2, true},
		{"anonymous public entry served to authorized", "public, max-age=60", false, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, fixed(200, "x", "Cache-Control", tt.cc))
			h := one(t, s, b, schemas.RouteCache{})
			auth := func(on bool) []string {
				if on {
					return []string{"Authorization", "Bearer t"}
				}
				return nil
			}
			do(h, "GET", "/p", auth(tt.authFirst)...)
			do(h, "GET", "/p", auth(tt.secondAuth)...)
			if n := b.count.Load(); n != tt.wantUp {
				t.Errorf("upstream saw %d requests, want %d", n, tt.wantUp)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		key    *schemas.CacheKey
		a, b   string   // targets
		ha, hb []string // headers
		shared bool
	}{
		{"whole query by default", nil, "/p?a=1&b=2", "/p?a=1&b=3", nil, nil, false},
		{"same query", nil, "/p?a=1", "/p?a=1", nil, nil, true},
		{"chosen query parameter", &schemas.CacheKey{Query: []string{"a"}}, "/p?a=1&b=2", "/p?b=3&a=1", nil, nil, true},
		{"chosen query parameter differs", &schemas.CacheKey{Query: []string{"a"}}, "/p?a=1&b=2", "/p?a=2&b=2", nil, nil, false},
		{"no query at all", &schemas.CacheKey{Query: []string{}}, "/p?a=1", "/p?a=2", nil, nil, true},
		{"path differs", nil, "/p", "/q", nil, nil, false},
		{"key header differs", &schemas.CacheKey{Headers: []string{"x-tenant"}}, "/p", "/p", []string{"X-Tenant", "a"}, []string{"X-Tenant", "b"}, false},
		{"key header same", &schemas.CacheKey{Headers: []string{"x-tenant"}}, "/p", "/p", []string{"X-Tenant", "a"}, []string{"X-Tenant", "a"}, true},
		{"other header ignored", nil, "/p", "/p", []string{"X-Tenant", "a"}, []string{"X-Tenant", "b"}, true},
		// Puma, WEBrick and other CGI-style servers read X_Tenant as
		// X-Tenant (HTTP_X_TENANT).
		{"key header in its CGI spelling", &schemas.CacheKey{Headers: []string{"x-tenant"}}, "/p", "/p", []string{"X_Tenant", "evil"}, nil, false},
		{"key header in its CGI spelling, lower case", &schemas.CacheKey{Headers: []string{"x-tenant"}}, "/p", "/p", []string{"x_tenant", "evil"}, []string{"X-Tenant", ""}, false},
		// An upstream that splits the query on ";" too (Rails, older
		// Python) reads lang=evil; the key must not take it for "/p?x=1".
		{"semicolon cloaks a keyed parameter", &schemas.CacheKey{Query: []string{"lang"}}, "/p?x=1;lang=evil", "/p?x=1", nil, nil, false},
		{"semicolon cloaks a keyed parameter, no query", &schemas.CacheKey{Query: []string{"lang"}}, "/p?utm=1;lang=evil", "/p", nil, nil, false},
		// ASP.NET and PHP's $_REQUEST tooling read parameter names
		// case-insensitively; some upstreams do not take "+" for a space.
		{"keyed parameter in another case", &schemas.CacheKey{Query: []string{"lang"}}, "/p?LANG=evil", "/p", nil, nil, false},
		{"keyed parameter spelled with an escape", &schemas.CacheKey{Query: []string{"lang"}}, "/p?l%61ng=evil", "/p", nil, nil, false},
		{"plus and %20 differ", &schemas.CacheKey{Query: []string{"lang"}}, "/p?lang=a+b", "/p?lang=a%20b", nil, nil, false},
		{"bad escape hides a keyed parameter", &schemas.CacheKey{Query: []string{"lang"}}, "/p?lang=%zz", "/p", nil, nil, false},
		// A trusted proxy's X-Forwarded-Proto and -Host reach the upstream
		// (an http-to-https redirect, absolute links): part of the key.
		{"scheme differs", nil, "https://a.example/p", "http://a.example/p", nil, nil, false},
		{"X-Forwarded-Proto differs", nil, "/p", "/p", []string{"X-Forwarded-Proto", "http"}, []string{"X-Forwarded-Proto", "https"}, false},
		{"X-Forwarded-Host differs", nil, "/p", "/p", []string{"X-Forwarded-Host", "evil.example"}, nil, false},
		{"X-Forwarded-Prefix differs", nil, "/p", "/p", []string{"X-Forwarded-Prefix", "/evil"}, nil, false},
		{"X-Forwarded-For ignored", nil, "/p", "/p", []string{"X-Forwarded-For", "10.0.0.1"}, []string{"X-Forwarded-For", "10.0.0.2"}, true},
		// An upstream may look hosts up case-sensitively (Go's ServeMux
		// host patterns do) and answer 404 for A.example: that answer
		// must not be served for a.example (cache-poisoned denial of
		// service).
		{"host case differs", nil, "http://A.example/p", "http://a.example/p", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, fixed(200, "x", "Cache-Control", "max-age=60"))
			h := one(t, s, b, schemas.RouteCache{Key: tt.key})
			do(h, "GET", tt.a, tt.ha...)
			do(h, "GET", tt.b, tt.hb...)
			want := int64(2)
			if tt.shared {
				want = 1
			}
			if n := b.count.Load(); n != want {
				t.Errorf("upstream saw %d requests, want %d", n, want)
			}
		})
	}
}

func TestLRUBoundAcrossRoutes(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("b", 1000)
	s, _ := newStore(t, 0)
	ba := newBackend(t, fixed(200, body, "Cache-Control", "max-age=60"))
	bb := newBackend(t, fixed(200, body, "Cache-Control", "max-age=60"))
	hs := routes(t, s, map[string]schemas.Route{"a": route(schemas.RouteCache{}), "b": route(schemas.RouteCache{})},
		map[string]http.Handler{"a": ba.proxy, "b": bb.proxy})
	do(hs["a"], "GET", "/0")
	// Room for five entries in all (entries of both routes have one size).
	s.mu.Lock()
	s.max = 5*s.used + s.used/2
	s.mu.Unlock()
	for i := 1; i < 4; i++ {
		do(hs["a"], "GET", fmt.Sprintf("/%d", i))
	}
	do(hs["a"], "GET", "/0") // used: now the most recent of a's
	for i := range 4 {
		do(hs["b"], "GET", fmt.Sprintf("/%d", i))
	}
	st := s.Stats()
	if st.Bytes > st.MaxBytes || st.Entries > 5 || st.Entries < 4 {
		t.Fatalf("stats %+v: over the bound or too few entries", st)
	}
	if n := ba.count.Load(); n != 4 {
		t.Fatalf("route a fetched %d, want 4", n)
	}
	// Route b's entries are the newest; of a's, /0 was used last.
	do(hs["b"], "GET", "/3")
	do(hs["a"], "GET", "/0")
	if n := bb.count.Load(); n != 4 {
		t.Errorf("route b's newest entry was evicted (%d fetches)", n)
	}
	if n := ba.count.Load(); n != 4 {
		t.Errorf("route a's recently used entry was evicted (%d fetches)", n)
	}
	do(hs["a"], "GET", "/1")
	if n := ba.count.Load(); n != 5 {
		t.Errorf("route a's least recently used entry was kept (%d fetches)", n)
	}
	// An entry over the whole bound is never stored.
	small, _ := newStore(t, 500)
	bc := newBackend(t, fixed(200, body, "Cache-Control", "max-age=60"))
	hc := one(t, small, bc, schemas.RouteCache{})
	do(hc, "GET", "/")
	do(hc, "GET", "/")
	if n := bc.count.Load(); n != 2 || small.Stats().Entries != 0 {
		t.Errorf("an entry larger than the bound was stored")
	}
}

func TestRetainKeepsUnchangedRoutes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	up := map[string]*backend{}
	next := map[string]http.Handler{}
	for _, n := range []string{"same", "newttl", "newpath", "removed"} {
		up[n] = newBackend(t, fixed(200, n, "Cache-Control", "max-age=60"))
		next[n] = up[n].proxy
	}
	specs := map[string]schemas.Route{}
	for n := range up {
		specs[n] = route(schemas.RouteCache{})
	}
	hs := routes(t, s, specs, next)
	for n := range up {
		do(hs[n], "GET", "/p")
	}
	// The next config: one route unchanged, one with another ttl, one
	// matching another path, one gone.
	c := route(schemas.RouteCache{TTL: ttl(time.Minute)})
	p := route(schemas.RouteCache{})
	p.Match.Path = "/v2"
	old := hs
	hs = routes(t, s, map[string]schemas.Route{"same": route(schemas.RouteCache{}), "newttl": c, "newpath": p}, next)
	if st := s.Stats(); st.Entries != 1 {
		t.Errorf("after the apply %d entries, want 1 (route same)", st.Entries)
	}
	for n, want := range map[string]int64{"same": 1, "newttl": 2, "newpath": 2} {
		do(hs[n], "GET", "/p")
		if got := up[n].count.Load(); got != want {
			t.Errorf("route %s: upstream saw %d, want %d", n, got, want)
		}
	}
	// A replaced snapshot's handler still in flight stores nothing.
	do(old["removed"], "GET", "/p")
	do(old["removed"], "GET", "/p")
	if got := up["removed"].count.Load(); got != 3 {
		t.Errorf("a removed route's handler still stored: upstream saw %d, want 3", got)
	}
}

// stampede sends n concurrent GETs of one key to h and waits for them.
func stampede(h http.Handler, n int) []*httptest.ResponseRecorder {
	out := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = do(h, "GET", "/hot") })
	}
	wg.Wait()
	return out
}

// waitRefs waits until the flight of the one key in flight has n parties.
// It gives up after a minute: requests that never join one flight (no
// coalescing) would leave the test hanging.
func waitRefs(t *testing.T, s *Store, n int) *flight {
	t.Helper()
	most := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		for _, f := range s.flights {
			if f.refs >= n {
				s.mu.Unlock()
				return f
			}
			most = max(most, f.refs)
		}
		s.mu.Unlock()
	}
	t.Fatalf("no flight gathered %d requests (at most %d)", n, most)
	return nil
}

func TestStampedeSendsOneRequest(t *testing.T) {
	t.Parallel()
	const n = 1000
	s, _ := newStore(t, 0)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("hot"))
	})
	h := one(t, s, b, schemas.RouteCache{})
	done := make(chan []*httptest.ResponseRecorder)
	go func() { done <- stampede(h, n) }()
	waitRefs(t, s, n) // every request is the leader or waits for it
	close(release)
	collapsed := 0
	for _, w := range <-done {
		if w.Code != 200 || w.Body.String() != "hot" {
			t.Fatalf("answer %d %q", w.Code, w.Body)
		}
		if w.Header().Get(StatusHeader) == "gitgate; fwd=uri-miss; collapsed" {
			collapsed++
		}
	}
	if got := b.count.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
	if collapsed != n-1 {
		t.Errorf("%d answers were collapsed, want %d", collapsed, n-1)
	}
}

func TestStampedeOfUnshareableResponse(t *testing.T) {
	t.Parallel()
	// A response that may not be shared (Set-Cookie) is not handed to the
	// waiters: each sends its own request.
	s, _ := newStore(t, 0)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Set-Cookie", "session=secret")
		_, _ = w.Write([]byte("mine"))
	})
	h := one(t, s, b, schemas.RouteCache{})
	done := make(chan []*httptest.ResponseRecorder)
	go func() { done <- stampede(h, 10) }()
	waitRefs(t, s, 10)
	close(release)
	for _, w := range <-done {
		if strings.Contains(w.Header().Get(StatusHeader), "collapsed") {
			t.Errorf("a waiter got the leader's private response")
		}
	}
	if got := b.count.Load(); got != 10 {
		t.Errorf("upstream saw %d requests, want 10", got)
	}
}

func TestWaiterLeavingKeepsLeadersFetch(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("v"))
	})
	h := one(t, s, b, schemas.RouteCache{})
	leader := make(chan *httptest.ResponseRecorder)
	go func() { leader <- do(h, "GET", "/hot") }()
	waitRefs(t, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/hot", nil))
		waiter <- w
	}()
	waitRefs(t, s, 2)
	cancel()
	if w := <-waiter; w.Body.Len() != 0 {
		t.Errorf("a waiter that left got %q", w.Body)
	}
	close(release)
	if w := <-leader; w.Code != 200 || w.Body.String() != "v" {
		t.Errorf("leader: %d %q", w.Code, w.Body)
	}
	if w := do(h, "GET", "/hot"); w.Header().Get("Age") != "0" {
		t.Errorf("the leader's response was not stored")
	}
	if got := b.count.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

func TestLeaderLeavingServesWaiters(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("v"))
	})
	h := one(t, s, b, schemas.RouteCache{})
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/hot", nil))
		close(leader)
	}()
	waitRefs(t, s, 1)
	waiter := make(chan *httptest.ResponseRecorder)
	go func() { waiter <- do(h, "GET", "/hot") }()
	f := waitRefs(t, s, 2)
	cancel() // the leader's client leaves; the waiter still wants the response
	for {
		s.mu.Lock()
		refs := f.refs
		s.mu.Unlock()
		if refs == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-leader
	if w := <-waiter; w.Code != 200 || w.Body.String() != "v" || !strings.Contains(w.Header().Get(StatusHeader), "collapsed") {
		t.Errorf("waiter: %d %q %q", w.Code, w.Body, w.Header().Get(StatusHeader))
	}
	if got := b.count.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

func TestWaiterWaitIsBounded(t *testing.T) {
	t.Parallel()
	// A waiter waits for the miss in flight at most the route's timeout,
	// then sends its own request.
	s, _ := newStore(t, 0)
	release := make(chan struct{})
	var first atomic.Bool
	b := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-release // the leader's request hangs
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("v"))
	})
	rt := route(schemas.RouteCache{})
	rt.Timeout = ttl(50 * time.Millisecond)
	h := routes(t, s, map[string]schemas.Route{"r": rt}, map[string]http.Handler{"r": b.proxy})["r"]
	leader := make(chan struct{})
	go func() {
		do(h, "GET", "/hot")
		close(leader)
	}()
	waitRefs(t, s, 1)
	w := do(h, "GET", "/hot") // waits, gives up, fetches on its own
	if w.Code != 200 || w.Body.String() != "v" || w.Header().Get(StatusHeader) != "gitgate; fwd=uri-miss" {
		t.Errorf("waiter: %d %q %q", w.Code, w.Body, w.Header().Get(StatusHeader))
	}
	close(release)
	<-leader
	if got := b.count.Load(); got != 2 {
		t.Errorf("upstream saw %d requests, want 2", got)
	}
}

// TestRequestsThatChangeTheAnswerBypass sends, first, a GET that an
// upstream may answer as something else (a method override, a body of
// unknown length as HTTP/2 sends it), then a plain GET: the plain one must
// not get the first one's answer.
func TestRequestsThatChangeTheAnswerBypass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"X-HTTP-Method-Override", func() *http.Request {
			r := httptest.NewRequest("GET", "/p", nil)
			r.Header.Set("X-HTTP-Method-Override", "DELETE")
			return r
		}},
		{"X-HTTP-Method", func() *http.Request {
			r := httptest.NewRequest("GET", "/p", nil)
			r.Header.Set("X-HTTP-Method", "DELETE")
			return r
		}},
		{"X-Method-Override", func() *http.Request {
			r := httptest.NewRequest("GET", "/p", nil)
			r.Header.Set("X-Method-Override", "DELETE")
			return r
		}},
		{"_method in the query", func() *http.Request {
			return httptest.NewRequest("GET", "/p?_method=DELETE", nil)
		}},
		{"body of unknown length", func() *http.Request {
			r := httptest.NewRequest("GET", "/p", io.NopCloser(strings.NewReader("evil")))
			r.ContentLength = -1
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				m := r.Header.Get("X-HTTP-Method-Override") + r.Header.Get("X-HTTP-Method") + r.Header.Get("X-Method-Override") + r.URL.Query().Get("_method")
				w.Header().Set("Cache-Control", "max-age=60")
				_, _ = io.WriteString(w, "method="+m+" body="+string(body))
			})
			h := one(t, s, b, schemas.RouteCache{Key: &schemas.CacheKey{Query: []string{"page"}}})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			if got := w.Header().Get(StatusHeader); got != "gitgate; fwd=bypass" {
				t.Errorf("first Cache-Status = %q, want a bypass", got)
			}
			if got := do(h, "GET", "/p").Body.String(); got != "method= body=" {
				t.Errorf("plain GET got %q", got)
			}
		})
	}
}

// TestCookieRequests: an upstream that answers by session cookie without
// saying private (a session-cookie app put behind a cached route) must not
// have one user's page served to another.
func TestCookieRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cc            string
		first, second string // Cookie values; "" none
		wantSecond    string
	}{
		{"one session's page not served to another", "max-age=60", "sid=alice", "sid=bob", "hello bob"},
		{"one session's page not served anonymously", "max-age=60", "sid=alice", "", "hello "},
		{"anonymous page not served to a session", "max-age=60", "", "sid=bob", "hello bob"},
		{"public page shared", "public, max-age=60", "sid=alice", "sid=bob", "hello alice"},
		{"s-maxage page shared", "s-maxage=60", "sid=alice", "", "hello alice"},
		{"anonymous requests share", "max-age=60", "", "", "hello "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tt.cc)
				user := ""
				if c, err := r.Cookie("sid"); err == nil {
					user = c.Value
				}
				_, _ = io.WriteString(w, "hello "+user)
			})
			h := one(t, s, b, schemas.RouteCache{})
			cookie := func(v string) []string {
				if v == "" {
					return nil
				}
				return []string{"Cookie", v}
			}
			do(h, "GET", "/me", cookie(tt.first)...)
			if got := do(h, "GET", "/me", cookie(tt.second)...).Body.String(); got != tt.wantSecond {
				t.Errorf("second request got %q, want %q", got, tt.wantSecond)
			}
		})
	}
}

// TestEncodedResponseVariesOnAcceptEncoding: an upstream that compresses
// by Accept-Encoding but forgets Vary (nginx's gzip_vary is off by
// default) must not have its gzip body served to a client that did not
// accept it.
func TestEncodedResponseVariesOnAcceptEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		vary         string
		first, later string // Accept-Encoding of the two requests
		wantLater    string // Content-Encoding the later one gets
	}{
		{"gzip then none", "", "gzip", "", ""},
		{"none then gzip gets the identity body", "", "", "gzip", ""},
		{"gzip then gzip shares", "", "gzip", "gzip", "gzip"},
		{"other Vary kept", "Accept-Language", "gzip", "", ""},
		{"upstream's own Vary", "Accept-Encoding", "gzip", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				if tt.vary != "" {
					w.Header().Set("Vary", tt.vary)
				}
				if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
					w.Header().Set("Content-Encoding", "gzip")
					_, _ = io.WriteString(w, "\x1f\x8bcompressed")
					return
				}
				_, _ = io.WriteString(w, "plain")
			})
			// As the gateway's pools: the client's Accept-Encoding goes
			// upstream and the answer comes back as it is.
			tr := &http.Transport{DisableCompression: true}
			t.Cleanup(tr.CloseIdleConnections)
			b.proxy.(*httputil.ReverseProxy).Transport = tr
			h := one(t, s, b, schemas.RouteCache{})
			ae := func(v string) []string {
				if v == "" {
					return nil
				}
				return []string{"Accept-Encoding", v}
			}
			do(h, "GET", "/p", ae(tt.first)...)
			w := do(h, "GET", "/p", ae(tt.later)...)
			if got := w.Header().Get("Content-Encoding"); got != tt.wantLater {
				t.Errorf("later request got Content-Encoding %q, want %q (body %q)", got, tt.wantLater, w.Body)
			}
			if tt.first == tt.later && b.count.Load() != 1 {
				t.Errorf("same Accept-Encoding: upstream saw %d requests, want 1", b.count.Load())
			}
		})
	}
}

// TestLargeHeadersNotStored: the headers and key of an entry are bounded
// like its body, whoever makes them large (the upstream's headers, a
// client's value of a key or Vary header).
func TestLargeHeadersNotStored(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 100<<10)
	tests := []struct {
		name   string
		resHdr []string // the upstream's extra headers
		reqHdr []string // the request's headers
		stored bool
	}{
		{"large response header", []string{"X-Big", big}, nil, false},
		{"many response headers", manyHeaders(2000), nil, false},
		{"large key header", nil, []string{"X-Tenant", big}, false},
		{"large Vary header", []string{"Vary", "X-Variant"}, []string{"X-Variant", big}, false},
		{"small headers", []string{"X-Small", "a", "Vary", "X-Variant"}, []string{"X-Tenant", "t", "X-Variant", "v"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, fixed(200, "x", append([]string{"Cache-Control", "max-age=60"}, tt.resHdr...)...))
			h := one(t, s, b, schemas.RouteCache{Key: &schemas.CacheKey{Headers: []string{"X-Tenant"}}})
			do(h, "GET", "/p", tt.reqHdr...)
			if got := s.Stats().Entries == 1; got != tt.stored {
				t.Errorf("stored %v, want %v (%d bytes)", got, tt.stored, s.Stats().Bytes)
			}
		})
	}
}

// manyHeaders returns n header pairs of 64 bytes each.
func manyHeaders(n int) []string {
	out := make([]string, 0, 2*n)
	for i := range n {
		out = append(out, fmt.Sprintf("X-H-%d", i), strings.Repeat("v", 64))
	}
	return out
}

// TestConditionalOtherVariant: a precondition is evaluated against the
// entry of the request's own variant: the ETag of the English page does
// not make the French one "not modified".
func TestConditionalOtherVariant(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		lang := r.Header.Get("Accept-Language")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("ETag", `"`+lang+`"`)
		if r.Header.Get("If-None-Match") == `"`+lang+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "page in "+lang)
	})
	h := one(t, s, b, schemas.RouteCache{})
	do(h, "GET", "/p", "Accept-Language", "en")
	w := do(h, "GET", "/p", "Accept-Language", "fr", "If-None-Match", `"en"`)
	if w.Code != 200 || w.Body.String() != "page in fr" {
		t.Errorf("fr with the en ETag: %d %q, want the fr page", w.Code, w.Body)
	}
	if w := do(h, "GET", "/p", "Accept-Language", "en", "If-None-Match", `"en"`); w.Code != http.StatusNotModified || w.Header().Get(StatusHeader) != "gitgate; hit; ttl=60" {
		t.Errorf("en with the en ETag: %d %q, want 304 from the cache", w.Code, w.Header().Get(StatusHeader))
	}
}

// TestVaryCGISpelling: an upstream that varies on X-Variant and reads it
// CGI-style also reads X_Variant: a request sending that spelling is
// another variant, not the plain one.
func TestVaryCGISpelling(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "X-Variant")
		v := r.Header.Get("X-Variant")
		for k, vs := range r.Header {
			if strings.EqualFold(k, "x_variant") {
				v = vs[0] // HTTP_X_VARIANT
			}
		}
		_, _ = io.WriteString(w, "variant="+v)
	})
	h := one(t, s, b, schemas.RouteCache{})
	do(h, "GET", "/p", "X_Variant", "evil")
	if got := do(h, "GET", "/p").Body.String(); got != "variant=" {
		t.Errorf("plain request got %q", got)
	}
}

// TestOriginPreconditionsGoUpstream: If-Match and If-Unmodified-Since are
// the origin's to evaluate (RFC 9111 section 4.3.2): a stored 200 must not
// answer a request whose precondition the origin would fail with 412.
func TestOriginPreconditionsGoUpstream(t *testing.T) {
	t.Parallel()
	lm := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		hdr  []string
	}{
		{"If-Match", []string{"If-Match", `"v0"`}},
		{"If-Unmodified-Since", []string{"If-Unmodified-Since", lm.Add(-time.Hour).Format(http.TimeFormat)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("ETag", `"v1"`)
				w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
				if r.Header.Get("If-Match") != "" || r.Header.Get("If-Unmodified-Since") != "" {
					w.WriteHeader(http.StatusPreconditionFailed)
					return
				}
				_, _ = io.WriteString(w, "body")
			})
			h := one(t, s, b, schemas.RouteCache{})
			do(h, "GET", "/p")
			if w := do(h, "GET", "/p", tt.hdr...); w.Code != http.StatusPreconditionFailed {
				t.Errorf("%d %q, want the origin's 412", w.Code, w.Header().Get(StatusHeader))
			}
			if w := do(h, "GET", "/p"); w.Code != 200 || w.Header().Get(StatusHeader) != "gitgate; hit; ttl=60" {
				t.Errorf("plain afterwards: %d %q, want a hit", w.Code, w.Header().Get(StatusHeader))
			}
		})
	}
}
