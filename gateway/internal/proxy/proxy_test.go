package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newRoute compiles one route to one upstream at url, defaults applied.
func newRoute(t *testing.T, url string, r schemas.Route, opts *Options) *Route {
	t.Helper()
	r.Backends = []schemas.Backend{{Upstream: "u", Weight: 100}}
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": {Targets: []string{url}}}, Routes: map[string]schemas.Route{"r": r}}
	cfg.ApplyDefaults()
	pool, err := upstream.NewPool("u", cfg.Upstreams["u"], upstream.Options{Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rt, err := NewRoute("r", cfg.Routes["r"], map[string]*Forwarder{"u": NewForwarder(pool, opts)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(up.Close)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	rt := newRoute(t, up.URL, schemas.Route{Match: schemas.Match{Path: "/"}, Retries: &schemas.Retries{
		Attempts: 2, BudgetPercent: 1, MinRetriesPerSecond: 1,
		BackoffBase: schemas.Duration(time.Microsecond), BackoffMax: schemas.Duration(time.Microsecond),
	}}, &Options{Now: clock.Now})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	send := func(n int) {
		for range n {
			resp, err := srv.Client().Get(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	// One request at a time: 1% of one active request allows no retry,
	// so only the one retry per second of MinRetriesPerSecond happens.
	send(5)
	if got := hits.Load(); got != 6 {
		t.Fatalf("5 requests hit the upstream %d times, want 6 (one retry in the second)", got)
	}
	clock.Advance(time.Second)
	send(1)
	if got := hits.Load(); got != 8 {
		t.Fatalf("after a second: %d hits, want 8", got)
	}
}

func TestPerTryTimeoutRetriesAnotherAttempt(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-r.Context().Done() // the first attempt hangs
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	rt := newRoute(t, up.URL, schemas.Route{
		Match:         schemas.Match{Path: "/"},
		PerTryTimeout: schemas.Duration(300 * time.Millisecond), // long enough for a loaded machine to answer the second attempt
		Retries:       &schemas.Retries{Attempts: 1, BackoffBase: schemas.Duration(time.Millisecond), BackoffMax: schemas.Duration(time.Millisecond)},
	}, &Options{})
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 || rec.Body.String() != "ok" || hits.Load() != 2 {
		t.Fatalf("got %d %q after %d hits", rec.Code, rec.Body.String(), hits.Load())
	}
}

func TestPathRewrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		rw      schemas.Rewrite
		match   schemas.Match
		in      string
		params  map[string]string
		want    string
		wantErr bool
		refused bool // apply refuses the result
	}{
		{name: "strip", rw: schemas.Rewrite{StripPrefix: "/api"}, in: "/api/users", want: "/users"},
		{name: "strip whole segments only", rw: schemas.Rewrite{StripPrefix: "/api"}, in: "/apiary", want: "/apiary"},
		{name: "strip with a trailing slash", rw: schemas.Rewrite{StripPrefix: "/api/"}, in: "/api/users", want: "/users"},
		{name: "regex climbing out", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/pub/([^/]*)-(.*)$`, Replacement: "/pub/$1/$2"}},
			in: "/pub/..-priv", refused: true},
		{name: "regex making a dot-dot parameter", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/pub/([^/]*)-(.*)$`, Replacement: "/pub/$1/$2"}},
			in: "/pub/..;x-priv", refused: true},
		{name: "regex making a dot segment", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/pub/([^/]*)-(.*)$`, Replacement: "/pub/$1/$2"}},
			in: "/pub/.-x", want: "/pub/x"},
		{name: "regex making double slashes", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/pub/(.*)$`, Replacement: "/pub//$1"}},
			in: "/pub/x", want: "/pub/x"},
		{name: "add prefix to a dot-dot name", rw: schemas.Rewrite{AddPrefix: "/v1"}, in: "/..x", want: "/v1/..x"},
		{name: "strip all", rw: schemas.Rewrite{StripPrefix: "/api"}, in: "/api", want: "/"},
		{name: "strip no match", rw: schemas.Rewrite{StripPrefix: "/api"}, in: "/web/x", want: "/web/x"},
		{name: "add", rw: schemas.Rewrite{AddPrefix: "/v1/"}, in: "/users", want: "/v1/users"},
		{name: "strip then add", rw: schemas.Rewrite{StripPrefix: "/a", AddPrefix: "/b"}, in: "/a/c", want: "/b/c"},
		{name: "regex", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/img/(?P<n>\d+)$`, Replacement: "/images/${n}.png"}}, in: "/img/7", want: "/images/7.png"},
		{name: "template", rw: schemas.Rewrite{Path: "/v2/accounts/{id}/{tab}"}, match: schemas.Match{Path: "/users/{id}/{tab}", PathType: "template"},
			in: "/users/9/x", params: map[string]string{"id": "9", "tab": "x"}, want: "/v2/accounts/9/x"},
		{name: "template unknown param", rw: schemas.Rewrite{Path: "/v2/{nope}"}, match: schemas.Match{Path: "/users/{id}", PathType: "template"}, wantErr: true},
		{name: "template on prefix route", rw: schemas.Rewrite{Path: "/v2/{id}"}, match: schemas.Match{Path: "/users", PathType: "prefix"}, wantErr: true},
		{name: "unclosed template", rw: schemas.Rewrite{Path: "/v2/{id"}, wantErr: true},
		{name: "bad regex", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: "a(b"}}, wantErr: true},
		{name: "huge regex", rw: schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: "(a{1000}){1000}"}}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var errs []string
			// A route's rewrite is checked by the shared rules, then compiled.
			for _, v := range rules.Route(schemas.Route{Match: tc.match, Rewrite: &tc.rw, Backends: []schemas.Backend{{Upstream: "u", Weight: 100}}}) {
				errs = append(errs, v.Field)
			}
			pr := compileRewrite(&tc.rw, func(path, format string, args ...any) { errs = append(errs, path) })
			if (len(errs) > 0) != tc.wantErr {
				t.Fatalf("errors %v, wantErr %v", errs, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			got, ok := pr.apply(tc.in, tc.params)
			if ok == tc.refused {
				t.Fatalf("apply(%q) = %q, ok %v; want refused %v", tc.in, got, ok, tc.refused)
			}
			if ok && got != tc.want {
				t.Fatalf("apply(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzPathTemplate(f *testing.F) {
	for _, s := range []string{"/v2/{id}", "/{a}/{b}/x", "{", "}", "/x{}y", ""} {
		f.Add(s, "/users/1")
	}
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		if _, err := rules.RewriteTemplate(tmpl); err != nil {
			return
		}
		parts := templateParts(tmpl)
		pr := &pathRewrite{tmpl: parts, hasTmpl: true}
		params := map[string]string{}
		for _, p := range parts {
			if p.param {
				params[p.s] = "v"
			}
		}
		if got, ok := pr.apply(path, params); ok && (got == "" || got[0] != '/') {
			t.Fatalf("apply gave %q", got)
		}
	})
}
