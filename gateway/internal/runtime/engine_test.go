package runtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/schemas"
)

func TestNoConfigAndNoRoute(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	srv := front(t, e)
	if code, body, _ := get(t, srv.Client(), srv.URL+"/x", nil); code != 503 || !strings.Contains(body, `"no config loaded"`) {
		t.Fatalf("before apply: %d %s", code, body)
	}
	a := named(t, "a")
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)},
		Routes:    map[string]schemas.Route{"r": route("/api", to("a", 100))},
	})
	if code, body, _ := get(t, srv.Client(), srv.URL+"/other", nil); code != 404 || body != "{\"error\":\"no_route\",\"message\":\"no route\"}\n" {
		t.Fatalf("unmatched: %d %q", code, body)
	}
}

func TestRoutingAndTransforms(t *testing.T) {
	t.Parallel()
	a, b := named(t, "a"), named(t, "b")
	e := newEngine(t, Options{})
	users := route("/users/{id}", to("b", 100))
	users.Match.PathType = schemas.PathTemplate
	users.Rewrite = &schemas.Rewrite{Path: "/v2/accounts/{id}"}
	strip := route("/svc", to("a", 100))
	strip.Rewrite = &schemas.Rewrite{StripPrefix: "/svc", AddPrefix: "/internal"}
	re := route("/old", to("a", 100))
	re.Rewrite = &schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: `^/old/(\w+)$`, Replacement: "/new/$1"}}
	hdr := route("/hdr", to("a", 100))
	hdr.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Env": "prod"}, Remove: []string{"X-Drop"}}
	hdr.ResponseHeaders = &schemas.HeaderOps{Add: map[string]string{"X-Served-By": "gitgate"}, Remove: []string{"X-Seen-Path"}}
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "b": ups(b.URL)},
		Routes: map[string]schemas.Route{
			"api": route("/api", to("a", 100)), "web": route("/web", to("b", 100)),
			"users": users, "strip": strip, "re": re, "hdr": hdr,
		},
	})
	srv := front(t, e)
	cases := []struct {
		name, path, wantUp, wantPath string
	}{
		{"prefix api", "/api/x", "a", "/api/x"},
		{"prefix web", "/web", "b", "/web"},
		{"template rewrite", "/users/42", "b", "/v2/accounts/42"},
		{"strip and add prefix", "/svc/items", "a", "/internal/items"},
		{"regex rewrite", "/old/thing", "a", "/new/thing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := srv.Client().Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if up, p := resp.Header.Get("X-Upstream"), resp.Header.Get("X-Seen-Path"); up != tc.wantUp || p != tc.wantPath {
				t.Fatalf("got upstream %q path %q, want %q %q", up, p, tc.wantUp, tc.wantPath)
			}
		})
	}
	t.Run("header ops", func(t *testing.T) {
		t.Parallel()
		var seen http.Header
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Clone()
			w.Header().Set("X-Seen-Path", r.URL.Path)
		}))
		defer echo.Close()
		e2 := newEngine(t, Options{})
		mustApply(t, e2, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(echo.URL)}, Routes: map[string]schemas.Route{"hdr": hdr}})
		s2 := front(t, e2)
		req, _ := http.NewRequest(http.MethodGet, s2.URL+"/hdr", nil)
		req.Header.Set("X-Drop", "1")
		req.Header.Set("X-Env", "dev")
		resp, err := s2.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if seen.Get("X-Env") != "prod" || seen.Get("X-Drop") != "" {
			t.Fatalf("upstream saw X-Env=%q X-Drop=%q", seen.Get("X-Env"), seen.Get("X-Drop"))
		}
		if resp.Header.Get("X-Served-By") != "gitgate" || resp.Header.Get("X-Seen-Path") != "" {
			t.Fatalf("response headers %v", resp.Header)
		}
	})
}

func TestWeightedBackends(t *testing.T) {
	t.Parallel()
	a, b := named(t, "a"), named(t, "b")
	cases := []struct {
		name       string
		wa, wb     int
		minA, maxA int // of 1000
		split      *schemas.Split
	}{
		{"all to a", 100, 0, 1000, 1000, nil},
		{"all to b", 0, 100, 0, 0, nil},
		{"70/30", 70, 30, 600, 800, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, Options{})
			r := route("/", to("a", tc.wa), to("b", tc.wb))
			mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "b": ups(b.URL)}, Routes: map[string]schemas.Route{"r": r}})
			srv := front(t, e)
			n := 0
			for range 1000 {
				if _, _, up := get(t, srv.Client(), srv.URL+"/", nil); up == "a" {
					n++
				}
			}
			if n < tc.minA || n > tc.maxA {
				t.Fatalf("a got %d of 1000, want %d..%d", n, tc.minA, tc.maxA)
			}
		})
	}
}

func TestStickySplit(t *testing.T) {
	t.Parallel()
	a, b := named(t, "a"), named(t, "b")
	e := newEngine(t, Options{})
	r := route("/", to("a", 50), to("b", 50))
	r.Split = &schemas.Split{HashOn: schemas.HashOn{Header: "X-User"}}
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "b": ups(b.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)
	sides := map[string]int{}
	for u := range 40 {
		user := map[string]string{"X-User": fmt.Sprintf("user-%d", u)}
		_, _, first := get(t, srv.Client(), srv.URL+"/", user)
		sides[first]++
		for range 10 {
			if _, _, up := get(t, srv.Client(), srv.URL+"/", user); up != first {
				t.Fatalf("user %d flipped from %s to %s", u, first, up)
			}
		}
	}
	if sides["a"] < 5 || sides["b"] < 5 {
		t.Fatalf("40 users split %v, want both sides used", sides)
	}
}

func TestBalancersThroughHandler(t *testing.T) {
	t.Parallel()
	for _, balance := range []string{schemas.BalanceRoundRobin, schemas.BalanceLeastRequests, schemas.BalanceRandom, schemas.BalanceHash} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			s1, s2, s3 := named(t, "1"), named(t, "2"), named(t, "3")
			e := newEngine(t, Options{})
			u := ups(s1.URL, s2.URL, s3.URL)
			u.Balance = balance
			if balance == schemas.BalanceHash {
				u.HashOn = &schemas.HashOn{Header: "X-User"}
			}
			mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"u": u}, Routes: map[string]schemas.Route{"r": route("/", to("u", 100))}})
			srv := front(t, e)
			counts := map[string]int{}
			for i := range 300 {
				user := map[string]string{"X-User": fmt.Sprintf("u%d", i)} // 300 users: with 30, a hash ring over random ports left a target 2 users (20 requests) in about 1 run of 500
				_, _, up := get(t, srv.Client(), srv.URL+"/", user)
				counts[up]++
			}
			for _, n := range []string{"1", "2", "3"} {
				if counts[n] < 30 {
					t.Fatalf("target %s got %d of 300: %v", n, counts[n], counts)
				}
			}
			if balance == schemas.BalanceRoundRobin && (counts["1"] != 100 || counts["2"] != 100) {
				t.Fatalf("round robin uneven: %v", counts)
			}
			if balance == schemas.BalanceHash {
				_, _, first := get(t, srv.Client(), srv.URL+"/", map[string]string{"X-User": "ann"})
				for range 20 {
					if _, _, up := get(t, srv.Client(), srv.URL+"/", map[string]string{"X-User": "ann"}); up != first {
						t.Fatalf("hash moved ann from %s to %s", first, up)
					}
				}
			}
		})
	}
}

func TestHopByHopAndForwardedHeaders(t *testing.T) {
	t.Parallel()
	type seenReq struct{ h http.Header }
	seen := make(chan seenReq, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- seenReq{r.Header.Clone()}
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
	}))
	t.Cleanup(echo.Close)
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(echo.URL)}, Routes: map[string]schemas.Route{"r": route("/", to("a", 100))}}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		send    map[string]string
		want    map[string]string
		absent  []string
	}{
		{
			name: "untrusted peer: forwarded headers replaced",
			send: map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"},
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http"},
		},
		{
			name:    "trusted peer: forwarded headers kept",
			trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			send:    map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"},
			want:    map[string]string{"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"},
		},
		{
			name:    "trusted peer: its X-Real-IP and X-Original-URL kept",
			trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			send:    map[string]string{"X-Real-IP": "203.0.113.9", "X-Original-URL": "/a", "X-Forwarded-Prefix": "/p"},
			want:    map[string]string{"X-Real-Ip": "203.0.113.9", "X-Original-Url": "/a", "X-Forwarded-Prefix": "/p"},
		},
		{
			name:   "untrusted peer: its X-Real-IP and X-Original-URL dropped",
			send:   map[string]string{"X-Real-IP": "203.0.113.9", "X-Original-URL": "/a", "X-Forwarded-Prefix": "/p"},
			absent: []string{"X-Real-Ip", "X-Original-Url", "X-Forwarded-Prefix"},
		},
		{
			// RFC 7239's Forwarded, read by Spring, gorilla/handlers'
			// ProxyHeaders and others for the scheme and host, is not in
			// the cache key: it must never reach the upstream.
			name:   "untrusted peer: its Forwarded dropped",
			send:   map[string]string{"Forwarded": "for=6.6.6.6;host=evil.example;proto=http"},
			absent: []string{"Forwarded"},
		},
		{
			name:   "connection-listed headers dropped, own X-Forwarded-For survives",
			send:   map[string]string{"Connection": "X-Forwarded-For, X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=5", "Proxy-Authorization": "x"},
			want:   map[string]string{"X-Forwarded-For": "127.0.0.1"},
			absent: []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, Options{TrustedProxies: tc.trusted})
			mustApply(t, e, cfg)
			srv := front(t, e)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			for k, v := range tc.send {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := (<-seen).h
			for k, v := range tc.want {
				if got := strings.Join(h.Values(k), ","); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if h.Get(k) != "" {
					t.Errorf("%s reached the upstream", k)
				}
			}
			if resp.Header.Get("X-Internal") != "" {
				t.Error("response header listed in Connection reached the client")
			}
		})
	}
}

func TestStreamingFlushesBeforeUpstreamEnds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	}))
	t.Cleanup(up.Close)
	defer close(release)
	e := newEngine(t, Options{})
	r := route("/", to("a", 100))
	r.Timeout = schemas.Duration(100 * time.Millisecond) // streams outlive the route timeout
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(up.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)
	resp, err := srv.Client().Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
}

func TestWebSocketUpgradeEcho(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
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
	e := newEngine(t, Options{})
	r := route("/", to("a", 100))
	// Long enough that a loaded CI machine completes the handshake within
	// it; the sleep below then outlasts it.
	r.Timeout = schemas.Duration(time.Second)
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
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	time.Sleep(1500 * time.Millisecond) // past the route timeout: upgraded connections outlive it
	_, _ = io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func TestHTTP2FromClients(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)}, Routes: map[string]schemas.Route{"r": route("/", to("a", 100))}})
	srv := httptest.NewUnstartedServer(e)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(body) != "a" {
		t.Fatalf("proto %s body %q", resp.Proto, body)
	}
}

func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	deadURL := refusedURL(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(slow.Close)
	a := named(t, "a")
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	t.Cleanup(failing.Close)

	limited := route("/small", to("a", 100))
	limited.MaxBodyBytes = 10
	limitedRetry := route("/smallretry", to("a", 100))
	limitedRetry.MaxBodyBytes = 10
	limitedRetry.Retries = &schemas.Retries{NonIdempotent: true}
	timeout := route("/slow", to("slow", 100))
	timeout.Timeout = schemas.Duration(50 * time.Millisecond)
	brk := route("/breaker", to("failing", 100))
	failingUp := ups(failing.URL)
	failingUp.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 1, OpenDuration: schemas.Duration(time.Hour)}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "dead": ups(deadURL), "slow": ups(slow.URL), "failing": failingUp},
		Routes:    map[string]schemas.Route{"small": limited, "smallretry": limitedRetry, "dead": route("/dead", to("dead", 100)), "slow": timeout, "breaker": brk},
	})
	srv := front(t, e)
	// Trip the breaker: its one failure passes the upstream's 502 through.
	if code, _, _ := get(t, srv.Client(), srv.URL+"/breaker", nil); code != 502 {
		t.Fatalf("first breaker request: %d", code)
	}
	cases := []struct {
		name, method, path string
		body               io.Reader
		chunked            bool
		code               int
		want               string
	}{
		{"413 by content-length", "POST", "/small", strings.NewReader(strings.Repeat("x", 100)), false, 413, `"request body too large"`},
		{"413 chunked", "POST", "/small", strings.NewReader(strings.Repeat("x", 100)), true, 413, `"request body too large"`},
		{"413 chunked with retry buffering", "POST", "/smallretry", strings.NewReader(strings.Repeat("x", 100)), true, 413, `"request body too large"`},
		{"small body passes", "POST", "/small", strings.NewReader("tiny"), true, 200, "a"},
		{"502 connect refused", "GET", "/dead", nil, false, 502, `"upstream failed"`},
		{"504 route timeout", "GET", "/slow", nil, false, 504, `"upstream timeout"`},
		{"503 breaker open", "GET", "/breaker", nil, false, 503, `{"error":"breaker_open","message":"circuit breaker open","upstream":"failing"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body
			if tc.chunked && body != nil {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, tc.code, tc.want)
			}
			if tc.code >= 400 && resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hits.Add(1)%3 != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(flaky.Close)
	deadURL := refusedURL(t)
	a := named(t, "a")
	r := route("/", to("flaky", 100))
	r.Retries = &schemas.Retries{Attempts: 2, BackoffBase: schemas.Duration(time.Millisecond), BackoffMax: schemas.Duration(2 * time.Millisecond), BudgetPercent: 100, MinRetriesPerSecond: 100}
	mixed := route("/mixed", to("mixed", 100))
	mixed.Retries = &schemas.Retries{BackoffBase: schemas.Duration(time.Millisecond), BackoffMax: schemas.Duration(time.Millisecond), MinRetriesPerSecond: 1000}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"flaky": ups(flaky.URL), "mixed": ups(deadURL, a.URL)},
		Routes:    map[string]schemas.Route{"r": r, "mixed": mixed},
	})
	srv := front(t, e)
	t.Run("GET fails twice then succeeds", func(t *testing.T) {
		hits.Store(0)
		code, body, _ := get(t, srv.Client(), srv.URL+"/", nil)
		if code != 200 || body != "ok" || hits.Load() != 3 {
			t.Fatalf("got %d %q after %d hits, want 200 ok after 3", code, body, hits.Load())
		}
	})
	t.Run("POST is not retried", func(t *testing.T) {
		hits.Store(0)
		resp, err := srv.Client().Post(srv.URL+"/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || hits.Load() != 1 {
			t.Fatalf("got %d after %d hits, want the upstream's 503 after 1", resp.StatusCode, hits.Load())
		}
	})
	t.Run("PUT body replayed", func(t *testing.T) {
		hits.Store(0)
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/", io.MultiReader(strings.NewReader("payload")))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || hits.Load() != 3 {
			t.Fatalf("got %d after %d hits", resp.StatusCode, hits.Load())
		}
	})
	t.Run("connect failure goes to another target", func(t *testing.T) {
		for range 20 {
			if code, body, _ := get(t, srv.Client(), srv.URL+"/mixed", nil); code != 200 || body != "a" {
				t.Fatalf("got %d %q", code, body)
			}
		}
	})
}

func TestHealthOutlierAndStateAcrossApply(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	u := ups(up.URL)
	u.HealthCheck = &schemas.HealthCheck{Path: "/healthz", Interval: schemas.Duration(50 * time.Millisecond), Timeout: schemas.Duration(50 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: 1}
	e := newEngine(t, Options{})
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": u}, Routes: map[string]schemas.Route{"r": route("/", to("u", 100))}}
	mustApply(t, e, cfg)
	srv := front(t, e)
	sick.Store(true)
	eventually(t, "target marked down", func() bool { return !e.Status().Upstreams["u"][0].Healthy })
	if code, body, _ := get(t, srv.Client(), srv.URL+"/", nil); code != 503 || !strings.Contains(body, `"no healthy target"`) {
		t.Fatalf("with the only target down: %d %s", code, body)
	}
	// An apply that leaves the upstream alone keeps its state.
	cfg.Routes = map[string]schemas.Route{"r": route("/", to("u", 100)), "r2": route("/two", to("u", 100))}
	mustApply(t, e, cfg)
	if e.Status().Upstreams["u"][0].Healthy {
		t.Fatal("health state lost across an apply that did not change the upstream")
	}
	sick.Store(false)
	eventually(t, "target marked up", func() bool { return e.Status().Upstreams["u"][0].Healthy })

	// Outlier ejection on an upstream without active checks.
	o := ups(up.URL)
	o.OutlierDetection = &schemas.OutlierDetection{ConsecutiveFailures: 2, BaseEjection: schemas.Duration(time.Hour), MaxEjection: schemas.Duration(time.Hour)}
	cfg.Upstreams = map[string]schemas.Upstream{"u": o}
	mustApply(t, e, cfg)
	sick.Store(true)
	for range 2 {
		if code, _, _ := get(t, srv.Client(), srv.URL+"/", nil); code != 502 {
			t.Fatalf("failing target answered %d", code)
		}
	}
	if !e.Status().Upstreams["u"][0].Ejected {
		t.Fatal("target not ejected after 2 consecutive failures")
	}
	cfg.Routes = map[string]schemas.Route{"r": route("/", to("u", 100))}
	mustApply(t, e, cfg)
	if !e.Status().Upstreams["u"][0].Ejected {
		t.Fatal("ejection lost across an apply that did not change the upstream")
	}
}

func TestBreakerHalfOpenCloses(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	sick.Store(true)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(up.Close)
	u := ups(up.URL)
	u.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 2, OpenDuration: schemas.Duration(50 * time.Millisecond)}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"u": u}, Routes: map[string]schemas.Route{"r": route("/", to("u", 100))}})
	srv := front(t, e)
	get(t, srv.Client(), srv.URL+"/", nil)
	get(t, srv.Client(), srv.URL+"/", nil)
	if s := e.Status().Breakers["u"]; s != "open" {
		t.Fatalf("breaker %q after 2 failures", s)
	}
	sick.Store(false)
	eventually(t, "breaker closes through half-open", func() bool {
		code, _, _ := get(t, srv.Client(), srv.URL+"/", nil)
		return code == 200 && e.Status().Breakers["u"] == "closed"
	})
}

func TestApplyRejectsBadBundlesAndKeepsRunning(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	good := schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)}, Routes: map[string]schemas.Route{"r": route("/", to("a", 100))}}
	e := newEngine(t, Options{})
	mustApply(t, e, good)
	running := e.Current()
	badRegex := route("/x", to("a", 100))
	badRegex.Rewrite = &schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: "(", Replacement: ""}}
	h2cUpgrade := route("/", to("a", 100))
	h2cUpgrade.Upgrades = []string{"websocket", "h2c"}
	cases := []struct {
		name   string
		bundle func() *schemas.Bundle
		path   string
	}{
		{"wrong digest", func() *schemas.Bundle { b := bundleOf(t, good); b.Digest = "sha256:00"; return b }, "bundle"},
		{"unknown apiVersion", func() *schemas.Bundle { b := bundleOf(t, good); b.APIVersion = "v0"; return b }, "bundle"},
		{"unknown upstream", func() *schemas.Bundle {
			return bundleOf(t, schemas.Config{Upstreams: good.Upstreams, Routes: map[string]schemas.Route{"r": route("/", to("nope", 100))}})
		}, "routes.r.backends[0].upstream"},
		{"bad regex", func() *schemas.Bundle {
			return bundleOf(t, schemas.Config{Upstreams: good.Upstreams, Routes: map[string]schemas.Route{"r": badRegex}})
		}, "routes.r.rewrite.regex.pattern"},
		{"h2c upgrade", func() *schemas.Bundle {
			return bundleOf(t, schemas.Config{Upstreams: good.Upstreams, Routes: map[string]schemas.Route{"r": h2cUpgrade}})
		}, "routes.r.upgrades[1]"},
		{"weights", func() *schemas.Bundle {
			return bundleOf(t, schemas.Config{Upstreams: good.Upstreams, Routes: map[string]schemas.Route{"r": route("/", to("a", 60))}})
		}, "routes.r.backends"},
		{"ftp target", func() *schemas.Bundle {
			return bundleOf(t, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups("ftp://x")}, Routes: good.Routes})
		}, "upstreams.a.targets[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bundle()
			for _, op := range []func(*schemas.Bundle) error{e.Check, e.Apply} {
				inv := invalid(t, op(b))
				found := false
				for _, d := range inv.Diagnostics {
					found = found || d.Path == tc.path
				}
				if !found {
					t.Fatalf("no diagnostic at %s: %v", tc.path, inv)
				}
			}
			if e.Current() != running {
				t.Fatal("running bundle changed")
			}
		})
	}
}

func TestSwapUnderLoadDropsNothing(t *testing.T) {
	t.Parallel()
	a, b := named(t, "a"), named(t, "b")
	e := newEngine(t, Options{})
	cfgs := []schemas.Config{
		{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "b": ups(b.URL)}, Routes: map[string]schemas.Route{"keep": route("/keep", to("a", 50), to("b", 50)), "x": route("/x", to("a", 100))}},
		{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "c": ups(b.URL)}, Routes: map[string]schemas.Route{"keep": route("/keep", to("a", 100)), "y": route("/y", to("c", 100))}},
	}
	mustApply(t, e, cfgs[0])
	srv := front(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			// POST so that the client never retries a request silently.
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Post(srv.URL+"/keep", "text/plain", strings.NewReader("hi"))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for i := range 50 {
		if err := e.Apply(bundleOf(t, cfgs[i%2])); err != nil {
			t.Fatal(err)
		}
		bad := bundleOf(t, schemas.Config{Routes: map[string]schemas.Route{"keep": route("/keep", to("missing", 100))}})
		if err := e.Apply(bad); err == nil {
			t.Fatal("invalid bundle applied")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed requests across 100 applies", ok.Load(), failed.Load())
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	a := named(t, "a")
	before := runtime.NumGoroutine()
	e := New(Options{Registry: prometheus.NewRegistry()})
	u := ups(a.URL)
	u.HealthCheck = &schemas.HealthCheck{Interval: schemas.Duration(10 * time.Second)}
	for i := range 5 {
		u.HealthCheck.Timeout = schemas.Duration(time.Duration(i+1) * time.Second) // a new pool each time
		mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": u}, Routes: map[string]schemas.Route{"r": route("/", to("a", 100))}})
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != 200 {
			t.Fatalf("request: %d", rec.Code)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= before })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 503 {
		t.Fatalf("after Close: %d", rec.Code)
	}
}

func TestMetricsRecorded(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{Registry: reg})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)}, Routes: map[string]schemas.Route{"r": route("/", to("a", 100))}})
	srv := front(t, e)
	get(t, srv.Client(), srv.URL+"/", nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"gitgate_requests_total", "gitgate_request_duration_seconds", "gitgate_requests_in_flight", "gitgate_upstream_target_healthy"} {
		if !names[n] {
			t.Errorf("metric %s missing (have %v)", n, names)
		}
	}
}

// TestRouteHeaderOpsCoverOtherSpellings checks that a route's requestHeaders
// set and remove also take away the client's underscore spellings, which
// CGI-style upstreams read under the same name.
func TestRouteHeaderOpsCoverOtherSpellings(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	t.Cleanup(echo.Close)
	r := route("/", to("a", 100))
	r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Tenant": "t1"}, Remove: []string{"X-Debug"}}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(echo.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header["X_Tenant"] = []string{"evil"}
	req.Header["x_debug"] = []string{"1"}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	for k, v := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Tenant") && (k != "X-Tenant" || strings.Join(v, ",") != "t1") {
			t.Errorf("upstream got %s: %q", k, v)
		}
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Debug") {
			t.Errorf("upstream got %s: %q", k, v)
		}
	}
}
