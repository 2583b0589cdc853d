package runtime

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// gatewayAnswer is the one JSON shape of every answer the gateway makes
// itself (README "Errors the gateway itself answers").
type gatewayAnswer struct {
	Error    string `json:"error"`
	Message  string `json:"message"`
	Upstream string `json:"upstream,omitempty"`
}

var answerCode = regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)

// TestGatewayAnswersShareOneShape collects an answer of each kind the
// gateway makes itself (before routing, by a policy, and for an upstream)
// and checks that all have the same shape and headers.
func TestGatewayAnswersShareOneShape(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(slow.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	t.Cleanup(failing.Close)
	failingUp := ups(failing.URL)
	failingUp.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 1, OpenDuration: schemas.Duration(time.Hour)}

	withPolicy := func(path, policy string) schemas.Route {
		r := route(path, to("a", 100))
		r.Policies = []string{policy}
		return r
	}
	small := route("/small", to("a", 100))
	small.MaxBodyBytes = 10
	timeout := route("/slow", to("slow", 100))
	timeout.Timeout = schemas.Duration(50 * time.Millisecond)
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "dead": ups(refusedURL(t)), "slow": ups(slow.URL), "failing": failingUp},
		Routes: map[string]schemas.Route{
			"small":   small,
			"dead":    route("/dead", to("dead", 100)),
			"slow":    timeout,
			"breaker": route("/breaker", to("failing", 100)),
			"key":     withPolicy("/key", "key"),
			"jwt":     withPolicy("/jwt", "jwt"),
			"office":  withPolicy("/office", "office"),
			"cors":    withPolicy("/cors", "cors"),
			"limited": withPolicy("/limited", "limited"),
		},
		Policies: map[string]schemas.Policy{
			"key":     {APIKey: &schemas.APIKey{Keys: map[string]string{"k": "sha256:" + strings.Repeat("0", 64)}}},
			"jwt":     {JWT: &schemas.JWT{Algorithms: []string{"HS256"}, Secret: &schemas.SecretRef{Env: "JWT_SECRET"}}},
			"office":  {IPAllow: &schemas.IPList{CIDRs: []string{"203.0.113.0/24"}}},
			"cors":    {CORS: &schemas.CORS{AllowOrigins: []string{"https://app.example.com"}}},
			"limited": {RateLimit: &schemas.RateLimit{Rate: 1, Per: schemas.Duration(time.Hour), Burst: 1}},
		},
	}
	env := func(name string) (string, bool) {
		return "a-secret-long-enough-for-hs256-0123456789", name == "JWT_SECRET"
	}
	e := newEngine(t, Options{LookupEnv: env})
	empty := newEngine(t, Options{})
	mustApply(t, e, cfg)
	serve := func(e *Engine, req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	get := func(path string) *http.Request { return httptest.NewRequest(http.MethodGet, path, nil) }
	// Trip the breaker and empty the rate limit's bucket.
	serve(e, get("/breaker"))
	serve(e, get("/limited"))

	preflight := httptest.NewRequest(http.MethodOptions, "/cors", nil)
	preflight.Header.Set("Origin", "https://evil.example.com")
	preflight.Header.Set("Access-Control-Request-Method", "GET")
	cases := []struct {
		name     string
		e        *Engine
		req      *http.Request
		status   int
		upstream string
	}{
		{"no config", empty, get("/"), 503, ""},
		{"method refused", e, httptest.NewRequest(http.MethodTrace, "/", nil), 405, ""},
		{"bad path", e, get("/a%2fb"), 400, ""},
		{"path parameters refused", e, get("/dead/x;v=1"), 400, ""},
		{"no route", e, get("/nowhere"), 404, ""},
		{"body too large", e, httptest.NewRequest(http.MethodPost, "/small", bytes.NewReader(make([]byte, 100))), 413, ""},
		{"api key missing", e, get("/key"), 401, ""},
		{"jwt missing", e, get("/jwt"), 401, ""},
		{"client address refused", e, get("/office"), 403, ""},
		{"cors preflight refused", e, preflight, 403, ""},
		{"rate limited", e, get("/limited"), 429, ""},
		{"upstream refused the connection", e, get("/dead"), 502, ""},
		{"upstream timeout", e, get("/slow"), 504, ""},
		{"breaker open", e, get("/breaker"), 503, "failing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(tc.e, tc.req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tc.status, rec.Body)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			dec := json.NewDecoder(rec.Body)
			dec.DisallowUnknownFields()
			var ans gatewayAnswer
			if err := dec.Decode(&ans); err != nil {
				t.Fatalf("body is not the gateway's answer shape: %v", err)
			}
			if _, err := dec.Token(); err != io.EOF {
				t.Fatalf("more than one JSON value in the body")
			}
			if !answerCode.MatchString(ans.Error) || ans.Message == "" || ans.Upstream != tc.upstream {
				t.Fatalf("answer %+v: want a snake_case error code, a message and upstream %q", ans, tc.upstream)
			}
		})
	}
}
