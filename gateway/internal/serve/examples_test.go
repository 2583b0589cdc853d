package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// The tests of this file load each config repository under examples/ with
// the agent's loader, point its upstreams at echo servers, push the bundle
// through the real admin socket of a real gateway process (Run) and send
// requests to the data plane that check what the example's comments
// promise. An example that stops validating, or stops doing what it says,
// fails here.

// echo is what an example upstream answers: which upstream and target got
// the request, and what the gateway forwarded.
type echo struct {
	Upstream string `json:"upstream"`
	Target   int    `json:"target"`
	Path     string `json:"path"`
	Host     string `json:"host"`
	// Headers holds the forwarded request headers the tests look at.
	Headers map[string]string `json:"headers"`
}

// echoedHeaders are the request headers an echo upstream reports back.
var echoedHeaders = []string{"X-Api-Key", "X-Consumer", "X-User-Id", "Authorization"}

func echoUpstream(t *testing.T, name string, target int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		e := echo{Upstream: name, Target: target, Path: r.URL.Path, Host: r.Host, Headers: map[string]string{}}
		for _, h := range echoedHeaders {
			if v, ok := r.Header[h]; ok {
				e.Headers[h] = strings.Join(v, ",")
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// exampleGateway is a running gateway serving one example config.
type exampleGateway struct {
	*gateway
	client *http.Client
}

// startExample validates examples/<name> with the agent's loader, swaps
// every upstream target for an echo server (one per target, so balancing
// still has as many targets as the example lists), and pushes the bundle
// to a fresh gateway through its admin socket.
func startExample(t *testing.T, name string, tweak func(*Config)) *exampleGateway {
	t.Helper()
	res, err := load.Dir(filepath.Join("..", "..", "..", "examples", name), load.Limits{})
	if err != nil {
		t.Fatalf("loading examples/%s: %v", name, err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("examples/%s does not validate: %v", name, err)
	}
	cfg := *res.Config
	ups := make(map[string]schemas.Upstream, len(cfg.Upstreams))
	for upName, u := range cfg.Upstreams {
		targets := make([]string, len(u.Targets))
		for i := range u.Targets {
			targets[i] = echoUpstream(t, upName, i).URL
		}
		u.Targets = targets
		ups[upName] = u
	}
	cfg.Upstreams = ups
	b, err := schemas.NewBundle("example-"+name, schemas.Source{Path: "examples/" + name}, cfg, time.Now())
	if err != nil {
		t.Fatalf("building the bundle of examples/%s: %v", name, err)
	}
	g := startGateway(t, t.TempDir(), tweak)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	if _, err := g.admin.Put(context.Background(), b, ""); err != nil {
		t.Fatalf("gateway refused examples/%s: %v", name, err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &exampleGateway{gateway: g, client: &http.Client{Transport: tr}}
}

// answer is what a client of the gateway saw.
type answer struct {
	status int
	header http.Header
	body   []byte
	echo   echo // zero unless an upstream answered
}

// do sends method host path with extra headers h to the data plane.
func (g *exampleGateway) do(t *testing.T, method, host, path string, h http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, g.data+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s http://%s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer to %s http://%s%s: %v", method, host, path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.echo); err != nil {
			t.Fatalf("decoding the upstream's echo %q: %v", body, err)
		}
	}
	return a
}

func TestExampleBasic(t *testing.T) {
	t.Parallel()
	g := startExample(t, "basic", nil)
	tests := []struct {
		name     string
		method   string
		host     string
		path     string
		status   int
		upstream string // "" when no upstream answers
		upPath   string // the path the upstream got
		cache    string // Cache-Control the client sees
	}{
		{name: "site root", method: "GET", host: "example.com", path: "/", status: 200, upstream: "web", upPath: "/"},
		{name: "site page on www", method: "GET", host: "www.example.com", path: "/about", status: 200, upstream: "web", upPath: "/about"},
		{name: "host with port", method: "GET", host: "example.com:8080", path: "/a", status: 200, upstream: "web", upPath: "/a"},
		{name: "api prefix stripped", method: "GET", host: "api.example.com", path: "/v1/orders", status: 200, upstream: "api", upPath: "/orders"},
		{name: "api POST allowed", method: "POST", host: "api.example.com", path: "/v1/orders", status: 200, upstream: "api", upPath: "/orders"},
		{name: "api DELETE has no route", method: "DELETE", host: "api.example.com", path: "/v1/orders", status: 404},
		{name: "prefix is segment-aware", method: "GET", host: "api.example.com", path: "/v1x/orders", status: 404},
		{name: "other version has no route", method: "GET", host: "api.example.com", path: "/v2/orders", status: 404},
		{name: "user template rewritten", method: "GET", host: "api.example.com", path: "/v1/users/42", status: 200, upstream: "api", upPath: "/users/42", cache: "no-store"},
		{name: "user POST falls to the api prefix", method: "POST", host: "api.example.com", path: "/v1/users/42", status: 200, upstream: "api", upPath: "/users/42"},
		{name: "dot segments cleaned before routing", method: "GET", host: "api.example.com", path: "/v1/x/../users/7", status: 200, upstream: "api", upPath: "/users/7", cache: "no-store"},
		{name: "unknown host", method: "GET", host: "unknown.example.org", path: "/", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := g.do(t, tt.method, tt.host, tt.path, nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d (body %s)", a.status, tt.status, a.body)
			}
			if a.echo.Upstream != tt.upstream || a.echo.Path != tt.upPath {
				t.Errorf("reached %q with path %q, want %q with %q", a.echo.Upstream, a.echo.Path, tt.upstream, tt.upPath)
			}
			// The gateway's own 404 answers carry no-store too; only the
			// upstream's answers show the route's response header edit.
			if got := a.header.Get("Cache-Control"); tt.status == 200 && got != tt.cache {
				t.Errorf("Cache-Control %q, want %q", got, tt.cache)
			}
		})
	}

	t.Run("round robin reaches both web targets", func(t *testing.T) {
		t.Parallel()
		seen := map[int]int{}
		for range 10 {
			a := g.do(t, "GET", "example.com", "/", nil)
			if a.status != 200 || a.echo.Upstream != "web" {
				t.Fatalf("got %d from %q, want 200 from web", a.status, a.echo.Upstream)
			}
			seen[a.echo.Target]++
		}
		if len(seen) != 2 {
			t.Errorf("targets reached %v, want both of web's two targets", seen)
		}
	})
}

func TestExampleCanary(t *testing.T) {
	t.Parallel()
	g := startExample(t, "canary", nil)
	session := func(id string) http.Header {
		return http.Header{"Cookie": {"session=" + id}}
	}
	// side asks which upstream serves the session id.
	side := func(t *testing.T, h http.Header) string {
		t.Helper()
		a := g.do(t, "GET", "shop.example.com", "/checkout/cart", h)
		if a.status != 200 {
			t.Fatalf("status %d, want 200 (body %s)", a.status, a.body)
		}
		return a.echo.Upstream
	}

	t.Run("header forces the canary", func(t *testing.T) {
		t.Parallel()
		for i := range 20 {
			h := session(fmt.Sprintf("forced-%d", i))
			h.Set("X-Canary", "always")
			if got := side(t, h); got != "checkout-canary" {
				t.Fatalf("X-Canary: always reached %q, want checkout-canary", got)
			}
		}
	})

	t.Run("another header value follows the split", func(t *testing.T) {
		t.Parallel()
		// Find a session on the stable side, then show that a wrong
		// X-Canary value does not move it.
		for i := range 200 {
			id := fmt.Sprintf("probe-%d", i)
			if side(t, session(id)) != "checkout-stable" {
				continue
			}
			h := session(id)
			h.Set("X-Canary", "sometimes")
			if got := side(t, h); got != "checkout-stable" {
				t.Fatalf("X-Canary: sometimes moved a stable session to %q", got)
			}
			return
		}
		t.Fatal("no session on the stable side among 200")
	})

	t.Run("a session stays on one side", func(t *testing.T) {
		t.Parallel()
		for u := range 30 {
			id := fmt.Sprintf("sticky-%d", u)
			first := side(t, session(id))
			for range 4 {
				if got := side(t, session(id)); got != first {
					t.Fatalf("session %s moved from %s to %s", id, first, got)
				}
			}
		}
	})

	t.Run("about ten percent of sessions reach the canary", func(t *testing.T) {
		t.Parallel()
		const users = 1000
		canary := 0
		for u := range users {
			if side(t, session(fmt.Sprintf("user-%d", u))) == "checkout-canary" {
				canary++
			}
		}
		// 10% of 1000 has a standard deviation of about 9.5; these bounds
		// are more than five of them away.
		if canary < 50 || canary > 150 {
			t.Errorf("%d of %d sessions reached the canary, want about 100", canary, users)
		}
	})

	t.Run("paths outside /checkout have no route", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/", "/checkoutx", "/cart"} {
			if a := g.do(t, "GET", "shop.example.com", p, nil); a.status != 404 {
				t.Errorf("GET %s: status %d, want 404", p, a.status)
			}
		}
	})
}

// The plain keys of examples/auth (documented in its README.md): the
// config holds only their SHA-256 hashes.
const (
	acmeKey   = "hello"
	globexKey = "world"
)

// jwtSecret is the HS256 key the example reads from ORDERS_JWT_SECRET.
const jwtSecret = "example-orders-secret-of-32-bytes!"

// token signs claims with key; base claims are those the example checks.
func token(t *testing.T, key string, edit func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": "https://auth.example.com/",
		"aud": []string{"orders"},
		"sub": "user-7",
		"exp": time.Now().Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExampleAuth is not parallel: the gateway resolves the example's
// {env: ORDERS_JWT_SECRET} from its process environment.
func TestExampleAuth(t *testing.T) {
	t.Setenv("ORDERS_JWT_SECRET", jwtSecret)
	trustLoopback := func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	}
	g := startExample(t, "auth", trustLoopback)
	// Every check below sends far fewer requests than the per-client
	// burst (40), so only the rate-limit case, on a gateway of its own,
	// meets a 429.

	type check struct {
		name     string
		method   string
		host     string
		path     string
		header   http.Header
		status   int
		www      string            // WWW-Authenticate, when refused
		upstream map[string]string // headers the upstream must (or, "", must not) get
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []check{
		{name: "api key missing", method: "GET", host: "partners.example.com", path: "/orders", status: 401,
			www: `APIKey realm="gitgate", header="X-Api-Key"`},
		{name: "api key wrong", method: "GET", host: "partners.example.com", path: "/orders",
			header: http.Header{"X-Api-Key": {"nope"}}, status: 401},
		{name: "api key of acme", method: "GET", host: "partners.example.com", path: "/orders/1",
			header: http.Header{"X-Api-Key": {acmeKey}}, status: 200,
			upstream: map[string]string{"X-Consumer": "acme", "X-Api-Key": ""}},
		{name: "api key of globex", method: "GET", host: "partners.example.com", path: "/orders",
			header: http.Header{"X-Api-Key": {globexKey}}, status: 200,
			upstream: map[string]string{"X-Consumer": "globex"}},
		{name: "client-sent consumer header replaced", method: "GET", host: "partners.example.com", path: "/orders",
			header: http.Header{"X-Api-Key": {acmeKey}, "X-Consumer": {"globex"}}, status: 200,
			upstream: map[string]string{"X-Consumer": "acme"}},
		{name: "jwt missing", method: "GET", host: "app.example.com", path: "/api/orders", status: 401, www: "Bearer"},
		{name: "jwt valid", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, nil)), status: 200,
			upstream: map[string]string{"X-User-Id": "user-7"}},
		{name: "jwt claim header not spoofable", method: "GET", host: "app.example.com", path: "/api/orders",
			header: http.Header{"Authorization": {"Bearer " + token(t, jwtSecret, nil)}, "X-User-Id": {"admin"}}, status: 200,
			upstream: map[string]string{"X-User-Id": "user-7"}},
		{name: "jwt signed with another secret", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, "another-secret-of-enough-length!!", nil)), status: 401, www: `Bearer error="invalid_token"`},
		{name: "jwt expired", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
			status: 401, www: `Bearer error="invalid_token"`},
		{name: "jwt without exp", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, func(c jwt.MapClaims) { delete(c, "exp") })),
			status: 401, www: `Bearer error="invalid_token"`},
		{name: "jwt issued in the future", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })),
			status: 401, www: `Bearer error="invalid_token"`},
		{name: "jwt from another issuer", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" })),
			status: 401, www: `Bearer error="invalid_token"`},
		{name: "jwt for another audience", method: "GET", host: "app.example.com", path: "/api/orders",
			header: bearer(token(t, jwtSecret, func(c jwt.MapClaims) { c["aud"] = []string{"billing"} })),
			status: 403, www: `Bearer error="insufficient_scope"`},
		{name: "cors preflight from the listed origin", method: "OPTIONS", host: "app.example.com", path: "/api/orders",
			header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"},
				"Access-Control-Request-Headers": {"authorization, content-type"}},
			status: 204},
		{name: "cors preflight from another origin", method: "OPTIONS", host: "app.example.com", path: "/api/orders",
			header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}},
			status: 403},
		{name: "cors preflight for a method not allowed", method: "OPTIONS", host: "app.example.com", path: "/api/orders",
			header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"DELETE"}},
			status: 403},
		{name: "admin from loopback refused", method: "GET", host: "admin.example.com", path: "/", status: 403},
		{name: "admin from the office network", method: "GET", host: "admin.example.com", path: "/",
			header: http.Header{"X-Forwarded-For": {"10.1.2.3"}}, status: 200},
		{name: "admin from the listed address", method: "GET", host: "admin.example.com", path: "/",
			header: http.Header{"X-Forwarded-For": {"192.0.2.10"}}, status: 200},
		{name: "admin from elsewhere", method: "GET", host: "admin.example.com", path: "/",
			header: http.Header{"X-Forwarded-For": {"203.0.113.5"}}, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := g.do(t, tt.method, tt.host, tt.path, tt.header)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d (body %s)", a.status, tt.status, a.body)
			}
			if tt.www != "" {
				if got := a.header.Get("WWW-Authenticate"); got != tt.www {
					t.Errorf("WWW-Authenticate %q, want %q", got, tt.www)
				}
			}
			if a.status >= 400 && a.status != 404 {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(a.body, &e); err != nil || e.Error == "" {
					t.Errorf("refusal body %q is not {\"error\",\"message\"} JSON", a.body)
				}
			}
			if a.status == 200 && a.echo.Upstream != "orders" {
				t.Errorf("reached %q, want orders", a.echo.Upstream)
			}
			for h, want := range tt.upstream {
				if got := a.echo.Headers[h]; got != want {
					t.Errorf("upstream got %s %q, want %q", h, got, want)
				}
			}
		})
	}

	t.Run("cors headers on the preflight", func(t *testing.T) {
		a := g.do(t, "OPTIONS", "app.example.com", "/api/orders", http.Header{
			"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"},
		})
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Max-Age":           "600",
		}
		for h, v := range want {
			if got := a.header.Get(h); got != v {
				t.Errorf("%s %q, want %q", h, got, v)
			}
		}
		if got := a.header.Values("Access-Control-Allow-Methods"); !strings.Contains(strings.Join(got, ","), "POST") {
			t.Errorf("Access-Control-Allow-Methods %q does not list POST", got)
		}
	})

	t.Run("cors headers on a refused request", func(t *testing.T) {
		// A 401 still carries CORS headers, so the page's script can read it.
		a := g.do(t, "GET", "app.example.com", "/api/orders", http.Header{"Origin": {"https://app.example.com"}})
		if a.status != 401 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Errorf("status %d, Access-Control-Allow-Origin %q; want 401 with the origin",
				a.status, a.header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("rate limit answers 429 after the burst", func(t *testing.T) {
		// A gateway of its own, so the bucket of 127.0.0.1 starts full.
		g := startExample(t, "auth", nil)
		const burst, most = 40, 1000
		key := http.Header{"X-Api-Key": {acmeKey}}
		ok := 0
		for range most {
			a := g.do(t, "GET", "partners.example.com", "/orders", key)
			if a.header.Get("RateLimit-Limit") != strconv.Itoa(burst) {
				t.Fatalf("RateLimit-Limit %q, want %d", a.header.Get("RateLimit-Limit"), burst)
			}
			switch a.status {
			case 200:
				ok++
				continue
			case 429:
			default:
				t.Fatalf("status %d, want 200 or 429 (body %s)", a.status, a.body)
			}
			if ok < burst {
				t.Errorf("429 after %d requests, want at least the burst of %d", ok, burst)
			}
			if a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Remaining") != "0" {
				t.Errorf("429 with Retry-After %q and RateLimit-Remaining %q, want a Retry-After and 0",
					a.header.Get("Retry-After"), a.header.Get("RateLimit-Remaining"))
			}
			if !strings.Contains(string(a.body), `"rate_limited"`) {
				t.Errorf("429 body %s, want error rate_limited", a.body)
			}
			return
		}
		t.Fatalf("no 429 within %d requests at 20/s with a burst of %d", most, burst)
	})
}
