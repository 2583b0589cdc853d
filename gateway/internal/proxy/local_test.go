package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/traffic"
	"github.com/gitgate/gitgate/schemas"
)

// newLocalRoute compiles route r, which answers by itself, defaults applied.
func newLocalRoute(t testing.TB, r schemas.Route, opts *Options) *Route {
	t.Helper()
	cfg := schemas.Config{Routes: map[string]schemas.Route{"r": r}}
	cfg.ApplyDefaults()
	rt, err := NewRoute("r", cfg.Routes["r"], map[string]*Forwarder{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestRedirectLocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		match  schemas.Match
		rd     schemas.Redirect
		host   string // request Host
		target string // request target
		tls    bool
		status int
		want   string // Location; "" : none
	}{
		{"http to https keeps path and query", schemas.Match{}, schemas.Redirect{Scheme: "https", Status: 301},
			"example.com:8080", "/a/b?x=1&y=2", false, 301, "https://example.com/a/b?x=1&y=2"},
		{"default status is 302", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", "/", false, 302, "https://example.com/"},
		{"same scheme keeps the request's port", schemas.Match{}, schemas.Redirect{Path: "/new"},
			"example.com:8080", "/old", false, 302, "http://example.com:8080/new"},
		{"https request stays https", schemas.Match{}, schemas.Redirect{Host: "www.example.com"},
			"example.com", "/x", true, 302, "https://www.example.com/x"},
		{"configured port, well-known one left out", schemas.Match{}, schemas.Redirect{Scheme: "https", Port: 443},
			"example.com:80", "/x", false, 302, "https://example.com/x"},
		{"configured port", schemas.Match{}, schemas.Redirect{Scheme: "https", Port: 8443, Status: 308},
			"example.com", "/x", false, 308, "https://example.com:8443/x"},
		{"strip query", schemas.Match{}, schemas.Redirect{Path: "/", StripQuery: true},
			"example.com", "/x?a=1", false, 302, "http://example.com/"},
		{"prefix replaced", schemas.Match{Path: "/old", PathType: schemas.PathPrefix}, schemas.Redirect{Prefix: "/new"},
			"example.com", "/old/a/b?q=1", false, 302, "http://example.com/new/a/b?q=1"},
		{"prefix replaced, path equal to it", schemas.Match{Path: "/old/", PathType: schemas.PathPrefix}, schemas.Redirect{Prefix: "/new"},
			"example.com", "/old", false, 302, "http://example.com/new"},
		{"prefix replaced by /", schemas.Match{Path: "/old", PathType: schemas.PathPrefix}, schemas.Redirect{Prefix: "/"},
			"example.com", "/old/a", false, 302, "http://example.com/a"},
		{"prefix / replaced", schemas.Match{Path: "/", PathType: schemas.PathPrefix}, schemas.Redirect{Prefix: "/v2"},
			"example.com", "/a", false, 302, "http://example.com/v2/a"},
		{"template parameters", schemas.Match{Path: "/users/{id}/posts/{post}", PathType: schemas.PathTemplate}, schemas.Redirect{Path: "/u/{id}/p/{post}"},
			"example.com", "/users/7/posts/a%20b?x=1", false, 302, "http://example.com/u/7/p/a%20b?x=1"},
		{"IPv6 host kept", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"[::1]:8080", "/", false, 302, "https://[::1]/"},
		// Hostile input.
		{"encoded CRLF in the path stays encoded", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", "/a%0d%0aSet-Cookie:%20x=1", false, 302, "https://example.com/a%0d%0aSet-Cookie:%20x=1"},
		{"encoded CRLF in the query stays encoded", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", "/a?x=%0d%0aSet-Cookie:x", false, 302, "https://example.com/a?x=%0d%0aSet-Cookie:x"},
		{"double slash path stays on the host", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", "//evil.com/x", false, 302, "https://example.com//evil.com/x"},
		{"backslash path is encoded", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", `/\evil.com`, false, 302, "https://example.com/%5Cevil.com"},
		{"encoded backslash stays encoded", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com", `/%5Cevil.com`, false, 302, "https://example.com/%5Cevil.com"},
		{"prefix with a hostile rest", schemas.Match{Path: "/old"}, schemas.Redirect{Prefix: "/"},
			"example.com", `/old//evil.com`, false, 302, "http://example.com//evil.com"},
		{"configured host ignores the request's", schemas.Match{}, schemas.Redirect{Host: "good.example"},
			"evil.com", "/x", false, 302, "http://good.example/x"},
		{"Host with a path is refused", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"evil.com/x?", "/", false, 400, ""},
		{"Host with userinfo is refused", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"good.com@evil.com", "/", false, 400, ""},
		{"Host with a bad port is refused", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"example.com:80x", "/", false, 400, ""},
		{"Host with a backslash is refused", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			`evil.com\example.com`, "/", false, 400, ""},
		{"Host with a zone is refused", schemas.Match{}, schemas.Redirect{Scheme: "https"},
			"[fe80::1%25eth0]", "/", false, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rd := tc.rd
			rt := newLocalRoute(t, schemas.Route{Match: tc.match, Redirect: &rd}, &Options{})
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			req.Host = tc.host
			if tc.match.PathType == schemas.PathTemplate {
				// As the router hands them over: decoded segments.
				segs := strings.Split(req.URL.Path, "/")
				req = WithParams(req, map[string]string{"id": segs[2], "post": segs[4]})
			}
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.status, rec.Body.String())
			}
			if got := rec.Header().Get("Location"); got != tc.want {
				t.Fatalf("Location %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRedirectOnTheWire sends hostile request targets over a raw socket
// and reads the raw response: no request byte may start a header of its
// own.
func TestRedirectOnTheWire(t *testing.T) {
	t.Parallel()
	rt := newLocalRoute(t, schemas.Route{Redirect: &schemas.Redirect{Scheme: "https"}}, &Options{})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	for _, target := range []string{
		"/a%0d%0aSet-Cookie:%20x=1",
		"/a?%0d%0aSet-Cookie:x=1",
		"/a?\x01x",
		"/a?x\"><script>",
	} {
		t.Run(target, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 302 {
				if len(resp.Header["Set-Cookie"]) > 0 {
					t.Fatalf("a request injected Set-Cookie: %v", resp.Header)
				}
				loc := resp.Header.Get("Location")
				if !strings.HasPrefix(loc, "https://example.com/a") || strings.ContainsAny(loc, "\"<>\x01 ") {
					t.Fatalf("Location %q", loc)
				}
			} else if resp.StatusCode != 400 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestDirectResponse(t *testing.T) {
	t.Parallel()
	rt := newLocalRoute(t, schemas.Route{
		DirectResponse: &schemas.DirectResponse{
			Status: 503, Body: "down for maintenance\n",
			Headers: map[string]string{"Retry-After": "120", "Cache-Control": "no-store"},
		},
		ResponseHeaders: &schemas.HeaderOps{Set: map[string]string{"X-Served-By": "gitgate"}, Remove: []string{"Cache-Control"}},
	}, &Options{})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			req, _ := http.NewRequest(method, srv.URL+"/anything", strings.NewReader("ignored"))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantBody := "down for maintenance\n"
			if method == http.MethodHead {
				wantBody = ""
			}
			if resp.StatusCode != 503 || string(body) != wantBody {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			for k, want := range map[string]string{
				"Retry-After": "120", "Content-Type": "text/plain; charset=utf-8", "Content-Length": "21",
				"X-Served-By": "gitgate", "Cache-Control": "",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
	// Counted like a forwarded request, under its own upstream label.
	var got client.Counts
	for name, c := range traffic.NewSet([]*traffic.Route{rt.Traffic()}).Read("v", time.Time{}, time.Time{}).Routes["r"].Backends {
		if name != UpstreamDirect {
			t.Fatalf("backend %q, want %q", name, UpstreamDirect)
		}
		got = c
	}
	if got.Requests != 3 {
		t.Fatalf("counted %+v, want 3 requests", got)
	}
}

// FuzzRedirectLocation: whatever the request's path, query and Host, the
// Location is refused or an absolute URL on the configured host (or the
// request's own, when none is configured), without a byte that could end
// the header or be read as another authority.
func FuzzRedirectLocation(f *testing.F) {
	for _, s := range [][3]string{
		{"/a/b", "x=1", "example.com"}, {"//evil.com", "", "example.com:8080"}, {`/\evil.com`, "a\r\nb", "[::1]:1"},
		{"/%2F%2Fevil.com", "%0d%0a", "evil.com@good"}, {"/old/x", "", "a.b"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	fixed := newLocalRoute(f, schemas.Route{Match: schemas.Match{Path: "/old"}, Redirect: &schemas.Redirect{Scheme: "https", Host: "good.example", Prefix: "/new"}}, &Options{})
	own := newLocalRoute(f, schemas.Route{Redirect: &schemas.Redirect{}}, &Options{})
	f.Fuzz(func(t *testing.T, path, query, host string) {
		u := &url.URL{Path: "/old" + path, RawQuery: query}
		for _, c := range []struct {
			rt       *Route
			wantHost string // "": the request's
		}{{fixed, "good.example"}, {own, ""}} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL, req.Host = u, host
			loc, ok := c.rt.local.(*redirect).location(req, false)
			if !ok {
				if c.wantHost != "" {
					t.Fatalf("refused with a configured host")
				}
				continue
			}
			if strings.ContainsAny(loc, "\r\n\x00 \\\"<>") {
				t.Fatalf("Location %q holds a byte it must not", loc)
			}
			parsed, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("Location %q does not parse: %v", loc, err)
			}
			want := c.wantHost
			if want == "" {
				want, _, _ = splitHost(host)
				want = strings.Trim(want, "[]")
			}
			if parsed.Hostname() != want || parsed.User != nil || !strings.HasPrefix(parsed.Path, "/") {
				t.Fatalf("Location %q: host %q user %v, want host %q", loc, parsed.Hostname(), parsed.User, want)
			}
		}
	})
}

// TestRedirectSchemeBehindTrustedProxy: with no scheme configured, a
// redirect keeps the scheme the client used, which a trusted proxy that
// ends TLS in front of the gateway tells in X-Forwarded-Proto; an
// untrusted peer's header is ignored.
func TestRedirectSchemeBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	trusting := newLocalRoute(t, schemas.Route{Redirect: &schemas.Redirect{Path: "/new"}}, &Options{TrustedProxies: loopback})
	wary := newLocalRoute(t, schemas.Route{Redirect: &schemas.Redirect{Path: "/new"}}, &Options{})
	for _, tc := range []struct {
		name string
		rt   *Route
		xfp  []string
		want string
	}{
		{"trusted proxy ended TLS", trusting, []string{"https"}, "https://app.example/new"},
		{"trusted proxy, plain", trusting, []string{"http"}, "http://app.example/new"},
		{"trusted proxy chain: the first is the client's", trusting, []string{"HTTPS, http"}, "https://app.example/new"},
		{"trusted proxy, unknown scheme", trusting, []string{"gopher"}, "http://app.example/new"},
		{"trusted proxy, none said", trusting, nil, "http://app.example/new"},
		{"untrusted peer's header ignored", wary, []string{"https"}, "http://app.example/new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.rt)
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/old", nil)
			req.Host = "app.example"
			req.Header["X-Forwarded-Proto"] = tc.xfp
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Location"); got != tc.want {
				t.Fatalf("Location %q, want %q", got, tc.want)
			}
		})
	}
}
