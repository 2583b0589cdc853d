package router

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// rt builds a route with a match; opts edit it further.
func rt(pathType, path string, opts ...func(*schemas.Route)) schemas.Route {
	r := schemas.Route{
		Match:    schemas.Match{Path: path, PathType: pathType},
		Backends: []schemas.Backend{{Upstream: "u", Weight: 100}},
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func hosts(h ...string) func(*schemas.Route) {
	return func(r *schemas.Route) { r.Match.Hosts = h }
}

func methods(m ...string) func(*schemas.Route) {
	return func(r *schemas.Route) { r.Match.Methods = m }
}

func prio(p int) func(*schemas.Route) {
	return func(r *schemas.Route) { r.Priority = p }
}

func header(name string, m schemas.StringMatch) func(*schemas.Route) {
	return func(r *schemas.Route) {
		if r.Match.Headers == nil {
			r.Match.Headers = map[string]schemas.StringMatch{}
		}
		r.Match.Headers[name] = m
	}
}

func query(name string, m schemas.StringMatch) func(*schemas.Route) {
	return func(r *schemas.Route) {
		if r.Match.Query == nil {
			r.Match.Query = map[string]schemas.StringMatch{}
		}
		r.Match.Query[name] = m
	}
}

// req is one request of a matching case.
type req struct {
	name    string
	method  string // default GET
	target  string // URL as sent: "http://host/path?query" or "/path"
	host    string // overrides the Host header when set
	headers http.Header
	want    string // route name, "" for no match
	params  map[string]string
}

func (q req) request() *http.Request {
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, q.target, nil)
	if q.host != "" {
		r.Host = q.host
	}
	maps.Copy(r.Header, q.headers)
	return r
}

func mustBuild(t testing.TB, routes map[string]schemas.Route) *Table {
	t.Helper()
	tab, err := Build(routes)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if tab.Len() != len(routes) {
		t.Fatalf("Len() = %d, want %d", tab.Len(), len(routes))
	}
	return tab
}

func runCases(t *testing.T, routes map[string]schemas.Route, cases []req) {
	t.Helper()
	tab := mustBuild(t, routes)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, ok := tab.Match(tc.request())
			if got := m.Route; got != tc.want || ok != (tc.want != "") {
				t.Fatalf("Match(%s %s host=%q) = %q, %v; want %q", tc.method, tc.target, tc.host, got, ok, tc.want)
			}
			if ok && tab.Names()[m.Index] != m.Route {
				t.Fatalf("Names()[%d] = %q, want %q", m.Index, tab.Names()[m.Index], m.Route)
			}
			if !maps.Equal(m.Params, tc.params) || (m.Params == nil) != (tc.params == nil) {
				t.Fatalf("Params = %v, want %v", m.Params, tc.params)
			}
		})
	}
}

func TestMatchHosts(t *testing.T) {
	t.Parallel()
	routes := map[string]schemas.Route{
		"exact":     rt("prefix", "/", hosts("api.example.com")),
		"wild":      rt("prefix", "/", hosts("*.example.com")),
		"wild-deep": rt("prefix", "/", hosts("*.eu.example.com")),
		"any":       rt("prefix", "/"),
		"star":      rt("prefix", "/only-star", hosts("*")),
		"upper":     rt("prefix", "/", hosts("Shop.Example.ORG.")),
		"ipv6":      rt("prefix", "/", hosts("[::1]")),
		"exact-api": rt("prefix", "/api", hosts("www.example.com")),
	}
	runCases(t, routes, []req{
		{name: "exact host", target: "http://api.example.com/x", want: "exact"},
		{name: "exact host with port", target: "/x", host: "api.example.com:8443", want: "exact"},
		{name: "exact host upper case", target: "/x", host: "API.Example.COM", want: "exact"},
		{name: "exact host trailing dot", target: "/x", host: "api.example.com.", want: "exact"},
		{name: "wildcard one label", target: "http://www.example.com/", want: "wild"},
		{name: "wildcard several labels", target: "http://a.b.c.example.com/", want: "wild"},
		{name: "longer wildcard suffix wins", target: "http://fr.eu.example.com/", want: "wild-deep"},
		{name: "wildcard does not match its bare suffix", target: "http://example.com/", want: "any"},
		{name: "wildcard does not match a longer label", target: "http://badexample.com/", want: "any"},
		{name: "any host", target: "http://other.test/", want: "any"},
		{name: "star route is any host", target: "http://other.test/only-star/x", want: "star"},
		{name: "config host canonicalized", target: "/", host: "shop.example.org", want: "upper"},
		{name: "ipv6 literal with port", target: "/", host: "[::1]:8080", want: "ipv6"},
		{name: "exact host falls through to wildcard when its path misses", target: "http://www.example.com/other", want: "wild"},
		{name: "exact host path hit", target: "http://www.example.com/api/v1", want: "exact-api"},
	})
}

func TestMatchPaths(t *testing.T) {
	t.Parallel()
	routes := map[string]schemas.Route{
		"root-exact":   rt("exact", "/"),
		"exact":        rt("exact", "/health"),
		"exact-slash":  rt("exact", "/status/"),
		"prefix":       rt("prefix", "/api"),
		"prefix-slash": rt("prefix", "/static/"),
		"prefix-deep":  rt("prefix", "/api/v2/admin"),
		"tmpl":         rt("template", "/users/{id}/orders/{oid}"),
		"tmpl-one":     rt("template", "/users/{id}"),
		"tmpl-mid":     rt("template", "/files/{name}/raw"),
		"regex":        rt("regex", `/reports/(?P<year>[0-9]{4})/[a-z]+\.csv`),
		"regex-plain":  rt("regex", `/img/[0-9]+`),
	}
	runCases(t, routes, []req{
		{name: "root exact", target: "/", want: "root-exact"},
		{name: "exact", target: "/health", want: "exact"},
		{name: "exact does not match a trailing slash", target: "/health/", want: ""},
		{name: "exact does not match a longer path", target: "/healthz", want: ""},
		{name: "exact with trailing slash", target: "/status/", want: "exact-slash"},
		{name: "exact with trailing slash needs it", target: "/status", want: ""},
		{name: "prefix itself", target: "/api", want: "prefix"},
		{name: "prefix with slash", target: "/api/", want: "prefix"},
		{name: "prefix below", target: "/api/v1/users", want: "prefix"},
		{name: "prefix is segment aware", target: "/apix", want: ""},
		{name: "prefix trailing slash in config is ignored", target: "/static", want: "prefix-slash"},
		{name: "deeper prefix wins", target: "/api/v2/admin/x", want: "prefix-deep"},
		{name: "deeper prefix is segment aware", target: "/api/v2/administrator", want: "prefix"},
		{name: "query does not affect path", target: "/health?x=1", want: "exact"},
		{name: "template two params", target: "/users/42/orders/7", want: "tmpl", params: map[string]string{"id": "42", "oid": "7"}},
		{name: "template one param", target: "/users/42", want: "tmpl-one", params: map[string]string{"id": "42"}},
		{name: "template param must not be empty", target: "/users/", want: ""},
		{name: "template too long", target: "/users/42/orders", want: ""},
		{name: "template literal after param", target: "/files/a.txt/raw", want: "tmpl-mid", params: map[string]string{"name": "a.txt"}},
		{name: "template literal after param must match", target: "/files/a.txt/cooked", want: ""},
		{name: "template param decoded", target: "/users/a%20b", want: "tmpl-one", params: map[string]string{"id": "a b"}},
		{name: "regex named group", target: "/reports/2024/sales.csv", want: "regex", params: map[string]string{"year": "2024"}},
		{name: "regex is anchored at the end", target: "/reports/2024/sales.csv.bak", want: ""},
		{name: "regex is anchored at the start", target: "/x/img/12", want: ""},
		{name: "regex without groups has no params", target: "/img/12", want: "regex-plain"},
	})
}

func TestMatchMethodsHeadersQuery(t *testing.T) {
	t.Parallel()
	routes := map[string]schemas.Route{
		"get":      rt("prefix", "/m", methods("GET", "HEAD")),
		"post":     rt("prefix", "/m", methods("POST")),
		"h-exact":  rt("prefix", "/h", header("x-env", schemas.StringMatch{Exact: "canary"})),
		"h-prefix": rt("prefix", "/h", header("X-Version", schemas.StringMatch{Prefix: "v2."})),
		"h-regex":  rt("prefix", "/h", header("X-User", schemas.StringMatch{Regex: `[a-z]+-[0-9]+`})),
		"h-pres":   rt("prefix", "/h", header("X-Debug", schemas.StringMatch{Present: true})),
		"h-none":   rt("prefix", "/h"),
		"q-exact":  rt("prefix", "/q", query("v", schemas.StringMatch{Exact: "a b"})),
		"q-pres":   rt("prefix", "/q", query("flag", schemas.StringMatch{Present: true})),
		"q-both": rt("prefix", "/q2",
			query("a", schemas.StringMatch{Exact: "1"}),
			query("b", schemas.StringMatch{Regex: "[0-9]+"})),
	}
	runCases(t, routes, []req{
		{name: "method get", target: "/m", want: "get"},
		{name: "method head", method: "HEAD", target: "/m", want: "get"},
		{name: "method post", method: "POST", target: "/m", want: "post"},
		{name: "method none", method: "DELETE", target: "/m", want: ""},
		{name: "header exact, name case-insensitive", target: "/h", headers: http.Header{"X-Env": {"canary"}}, want: "h-exact"},
		{name: "header exact mismatch", target: "/h", headers: http.Header{"X-Env": {"canary2"}}, want: "h-none"},
		{name: "header any value matches", target: "/h", headers: http.Header{"X-Env": {"prod", "canary"}}, want: "h-exact"},
		{name: "header prefix", target: "/h", headers: http.Header{"X-Version": {"v2.3"}}, want: "h-prefix"},
		{name: "header regex anchored", target: "/h", headers: http.Header{"X-User": {"bob-1"}}, want: "h-regex"},
		{name: "header regex not partial", target: "/h", headers: http.Header{"X-User": {"bob-1x"}}, want: "h-none"},
		{name: "header present with empty value", target: "/h", headers: http.Header{"X-Debug": {""}}, want: "h-pres"},
		{name: "no header", target: "/h", want: "h-none"},
		{name: "query exact decoded", target: "/q?v=a+b", want: "q-exact"},
		{name: "query exact percent decoded", target: "/q?v=a%20b", want: "q-exact"},
		{name: "query exact second value", target: "/q?v=x&v=a+b", want: "q-exact"},
		{name: "query present without value", target: "/q?flag", want: "q-pres"},
		{name: "query escaped key", target: "/q?fl%61g=1", want: "q-pres"},
		{name: "query semicolon pair skipped", target: "/q?flag=1;x=2", want: ""},
		{name: "query missing", target: "/q?other=1", want: ""},
		{name: "query all matchers", target: "/q2?b=12&a=1", want: "q-both"},
		{name: "query one matcher fails", target: "/q2?b=1x&a=1", want: ""},
	})
}

func TestMatchOrder(t *testing.T) {
	t.Parallel()
	routes := map[string]schemas.Route{
		// Specificity on /s.
		"s-prefix-root": rt("prefix", "/"),
		"s-prefix":      rt("prefix", "/s"),
		"s-tmpl":        rt("template", "/s/{x}"),
		"s-prefix-lit":  rt("prefix", "/s/lit"),
		"s-exact":       rt("exact", "/s/lit"),
		"s-regex":       rt("regex", "/s/.*"),
		// Priority beats specificity.
		"p-exact": rt("exact", "/p/x"),
		"p-regex": rt("regex", "/p/.*", prio(5)),
		"p-root":  rt("prefix", "/p", prio(10), methods("DELETE")),
		// Template wins a literal-length tie with a prefix.
		"t-tmpl":   rt("template", "/{a}/bb"),
		"t-prefix": rt("prefix", "/tt"),
		// More constraints first, then name.
		"c-b":       rt("prefix", "/c"),
		"c-a":       rt("prefix", "/c"),
		"c-method":  rt("prefix", "/c", methods("GET")),
		"c-headers": rt("prefix", "/c", header("A", schemas.StringMatch{Present: true}), header("B", schemas.StringMatch{Present: true})),
		"c-header":  rt("prefix", "/c", header("A", schemas.StringMatch{Present: true})),
		"c-query":   rt("prefix", "/c", query("q", schemas.StringMatch{Present: true})),
		// Host specificity beats path specificity, priority beats host.
		"h-wild-exact": rt("exact", "/hh", hosts("*.example.com")),
		"h-exact-pre":  rt("prefix", "/", hosts("a.example.com")),
		"h-any-prio":   rt("prefix", "/hp", prio(1)),
	}
	runCases(t, routes, []req{
		{name: "exact beats all", target: "/s/lit", want: "s-exact"},
		{name: "longer prefix beats template", target: "/s/lit/more", want: "s-prefix-lit"},
		{name: "template beats shorter prefix", target: "/s/other", want: "s-tmpl", params: map[string]string{"x": "other"}},
		{name: "prefix beats regex", target: "/s/a/b", want: "s-prefix"},
		{name: "regex beats nothing else", target: "/p/y", want: "p-regex"},
		{name: "priority beats exact", target: "/p/x", want: "p-regex"},
		{name: "higher priority wins when it matches", method: "DELETE", target: "/p/x", want: "p-root"},
		{name: "root prefix is the fallback", target: "/nothing", want: "s-prefix-root"},
		{name: "template wins equal literal length", target: "/tt/bb", want: "t-tmpl", params: map[string]string{"a": "tt"}},
		{name: "method constraint first", target: "/c", headers: http.Header{"A": {"1"}, "B": {"1"}}, want: "c-method"},
		{name: "more headers next", method: "POST", target: "/c?q", headers: http.Header{"A": {"1"}, "B": {"1"}}, want: "c-headers"},
		{name: "one header next", method: "POST", target: "/c?q", headers: http.Header{"A": {"1"}}, want: "c-header"},
		{name: "query next", method: "POST", target: "/c?q", want: "c-query"},
		{name: "name last", method: "POST", target: "/c", want: "c-a"},
		{name: "exact host prefix beats wildcard exact path", target: "http://a.example.com/hh", want: "h-exact-pre"},
		{name: "wildcard used for other hosts", target: "http://b.example.com/hh", want: "h-wild-exact"},
		{name: "priority beats host specificity", target: "http://a.example.com/hp", want: "h-any-prio"},
	})
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		route    schemas.Route
		wantPath string
		wantMsg  string
	}{
		{name: "bad regex", route: rt("regex", "/a/(b"), wantPath: "routes.r.match.path", wantMsg: "does not compile"},
		{name: "regex too long", route: rt("regex", "/"+strings.Repeat("a", rules.MaxRegexBytes)), wantPath: "routes.r.match.path", wantMsg: "over the limit"},
		{name: "regex program too big", route: rt("regex", "[a-z]{1,1000}[0-9]{1,1000}[a-z]{1,1000}"), wantPath: "routes.r.match.path", wantMsg: "instructions"},
		{name: "template partial segment", route: rt("template", "/users/{id}.json"), wantPath: "routes.r.match.path", wantMsg: "whole {name}"},
		{name: "template empty name", route: rt("template", "/users/{}"), wantPath: "routes.r.match.path", wantMsg: "whole {name}"},
		{name: "template bad name", route: rt("template", "/users/{1x}"), wantPath: "routes.r.match.path", wantMsg: "whole {name}"},
		{name: "template duplicate", route: rt("template", "/a/{id}/b/{id}"), wantPath: "routes.r.match.path", wantMsg: "twice"},
		{name: "template unbalanced", route: rt("template", "/a/{id"), wantPath: "routes.r.match.path", wantMsg: "whole {name}"},
		{name: "relative exact path", route: rt("exact", "api"), wantPath: "routes.r.match.path", wantMsg: "must start with"},
		{name: "unknown path type", route: rt("glob", "/a/*"), wantPath: "routes.r.match.pathType", wantMsg: "unknown path type"},
		{name: "bad header regex", route: rt("prefix", "/", header("x-a", schemas.StringMatch{Regex: "("})), wantPath: "routes.r.match.headers.x-a.regex", wantMsg: "does not compile"},
		{name: "header matcher with two kinds", route: rt("prefix", "/", header("x-a", schemas.StringMatch{Exact: "a", Prefix: "b"})), wantPath: "routes.r.match.headers.x-a", wantMsg: "exactly one"},
		{name: "empty query matcher", route: rt("prefix", "/", query("q", schemas.StringMatch{})), wantPath: "routes.r.match.query.q", wantMsg: "exactly one"},
		{name: "wildcard in the middle", route: rt("prefix", "/", hosts("a.*.com")), wantPath: "routes.r.match.hosts[0]", wantMsg: "must be a name"},
		{name: "bare wildcard dot", route: rt("prefix", "/", hosts("ok.com", "*.")), wantPath: "routes.r.match.hosts[1]", wantMsg: "must be a name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tab, err := Build(map[string]schemas.Route{"good": rt("prefix", "/"), "r": tc.route})
			if tab != nil {
				t.Fatalf("Build returned a table with an error")
			}
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Build error = %v, want *schemas.InvalidError", err)
			}
			if len(inv.Diagnostics) != 1 {
				t.Fatalf("diagnostics = %v, want exactly one", inv.Diagnostics)
			}
			d := inv.Diagnostics[0]
			if d.Path != tc.wantPath || !strings.Contains(d.Message, tc.wantMsg) {
				t.Fatalf("diagnostic = %q at %q, want %q at %q", d.Message, d.Path, tc.wantMsg, tc.wantPath)
			}
		})
	}
}

func TestBuildReportsEveryRoute(t *testing.T) {
	t.Parallel()
	_, err := Build(map[string]schemas.Route{
		"b": rt("regex", "("),
		"a": rt("template", "/{"),
		"c": rt("prefix", "/ok"),
	})
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Build error = %v, want *schemas.InvalidError", err)
	}
	var paths []string
	for _, d := range inv.Diagnostics {
		paths = append(paths, d.Path)
	}
	if got, want := strings.Join(paths, ","), "routes.a.match.path,routes.b.match.path"; got != want {
		t.Fatalf("diagnostic paths = %s, want %s", got, want)
	}
}

func TestEmptyTable(t *testing.T) {
	t.Parallel()
	tab := mustBuild(t, nil)
	if m, ok := tab.Match(httptest.NewRequest("GET", "/", nil)); ok {
		t.Fatalf("empty table matched %q", m.Route)
	}
}

func TestDefaultsApplied(t *testing.T) {
	t.Parallel()
	// An undefaulted route (no path, no path type) is a prefix "/".
	tab := mustBuild(t, map[string]schemas.Route{"all": {}})
	if m, ok := tab.Match(httptest.NewRequest("GET", "/any/thing", nil)); !ok || m.Route != "all" {
		t.Fatalf("Match = %q, %v; want all", m.Route, ok)
	}
}

func TestMatchAllocations(t *testing.T) {
	tab := mustBuild(t, map[string]schemas.Route{
		"exact":  rt("exact", "/a/b", hosts("x.example.com")),
		"prefix": rt("prefix", "/a", hosts("*.example.com"), methods("GET")),
		"hdr":    rt("prefix", "/h", header("X-A", schemas.StringMatch{Prefix: "v"})),
		"query":  rt("prefix", "/q", query("k", schemas.StringMatch{Exact: "v"})),
		"regex":  rt("regex", "/r/[0-9]+"),
		"tmpl":   rt("template", "/t/{id}"),
	})
	cases := []struct {
		name   string
		target string
		allocs float64
	}{
		{name: "exact", target: "http://x.example.com/a/b", allocs: 0},
		{name: "wildcard prefix", target: "http://y.example.com/a/c", allocs: 0},
		{name: "header", target: "/h", allocs: 0},
		{name: "query", target: "/q?k=v", allocs: 0},
		{name: "regex", target: "/r/12", allocs: 0},
		{name: "miss", target: "/nothing/here", allocs: 0},
		{name: "template params (the map)", target: "/t/7", allocs: 2},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", tc.target, nil)
		r.Header.Set("X-A", "v1")
		got := testing.AllocsPerRun(100, func() { tab.Match(r) })
		if got > tc.allocs {
			t.Errorf("%s: %v allocations per Match, want at most %v", tc.name, got, tc.allocs)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	tab := mustBuild(t, map[string]schemas.Route{"b": rt("prefix", "/b"), "a": rt("prefix", "/a"), "c": rt("exact", "/c")})
	if got := strings.Join(tab.Names(), ","); got != "a,b,c" {
		t.Fatalf("Names() = %s, want a,b,c", got)
	}
	for _, name := range tab.Names() {
		m, ok := tab.Match(httptest.NewRequest("GET", "/"+name, nil))
		if !ok || m.Route != name || tab.Names()[m.Index] != name {
			t.Fatalf("Match(/%s) = %+v, %v", name, m, ok)
		}
	}
}

// TestConcurrentMatch shares one table between goroutines; run with -race.
func TestConcurrentMatch(t *testing.T) {
	t.Parallel()
	tab := mustBuild(t, benchRoutes(200))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				target := fmt.Sprintf("/t%d/users/%d", (i/4)*4+2, g)
				m, ok := tab.Match(httptest.NewRequest("GET", target, nil))
				if want := fmt.Sprintf("r%05d", (i/4)*4+2); !ok || m.Route != want || m.Params["id"] != fmt.Sprint(g) {
					t.Errorf("Match(%s) = %+v, %v; want %s", target, m, ok, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
