package runtime

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// requestCounts reads gitgate_requests_total by "route/upstream/policy/code".
func requestCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["route"]+"/"+l["upstream"]+"/"+l["policy"]+"/"+l["code"]] += m.GetCounter().GetValue()
		}
	}
	return out
}

// TestEveryRequestObserved: every request, whoever answers it (no route,
// a policy, the upstream, the gateway for a failed upstream), is counted
// once in gitgate_requests_total and logged once in the access log, with
// its route ("none" when unrouted) and the policy that answered ("none"
// when the request got through); gateway-made 502 and 504 answers carry
// their cause.
func TestEveryRequestObserved(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	reg := prometheus.NewRegistry()
	var sink lockedBuffer
	e := newEngine(t, Options{Registry: reg, AccessLog: true, Logger: zerolog.New(&sink)})
	slow := route("/slow", to("hang", 100))
	slow.Timeout = schemas.Duration(100 * time.Millisecond)
	withPolicy := func(path, policy string) schemas.Route {
		r := route(path, to("a", 100))
		r.Policies = []string{policy}
		return r
	}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "dead": ups(refusedURL(t)), "hang": ups(hang.URL)},
		Routes: map[string]schemas.Route{
			"shop":   route("/shop", to("a", 100)),
			"dead":   route("/dead", to("dead", 100)),
			"slow":   slow,
			"rl":     withPolicy("/rl", "one-per-hour"),
			"keyed":  withPolicy("/keyed", "keys"),
			"denied": withPolicy("/denied", "no-loopback"),
			"cors":   withPolicy("/cors", "web"),
		},
		Policies: map[string]schemas.Policy{
			"one-per-hour": {RateLimit: &schemas.RateLimit{Rate: 1, Per: schemas.Duration(time.Hour), Burst: 1}},
			"keys":         {APIKey: &schemas.APIKey{Keys: map[string]string{"c": "sha256:" + strings.Repeat("0", 64)}}},
			"no-loopback":  {IPDeny: &schemas.IPList{CIDRs: []string{"127.0.0.0/8", "::1"}}},
			"web":          {CORS: &schemas.CORS{AllowOrigins: []string{"https://ok.example"}}},
		},
	}
	mustApply(t, e, cfg)
	srv := front(t, e)

	type want struct {
		route, upstream, policy string
		status                  int
		cause                   bool
	}
	cases := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   want
	}{
		{"unrouted", http.MethodGet, "/nowhere/at/all", nil, want{"none", "none", "none", 404, false}},
		{"bad path", http.MethodGet, "/shop/%2e%2e%2fadmin", nil, want{"none", "none", "none", 400, false}},
		{"trace refused before routing", http.MethodTrace, "/shop/cart", nil, want{"none", "none", "none", 405, false}},
		{"path parameter refused", http.MethodGet, "/shop/..;/cart", nil, want{"none", "none", "none", 400, false}},
		{"proxied", http.MethodGet, "/shop/cart", nil, want{"shop", "a", "none", 200, false}},
		{"rate limit lets the first through", http.MethodGet, "/rl", nil, want{"rl", "a", "none", 200, false}},
		{"rate limited", http.MethodGet, "/rl", nil, want{"rl", "none", "one-per-hour", 429, false}},
		{"api key missing", http.MethodGet, "/keyed", nil, want{"keyed", "none", "keys", 401, false}},
		{"ip denied", http.MethodGet, "/denied", nil, want{"denied", "none", "no-loopback", 403, false}},
		{"cors preflight refused", http.MethodOptions, "/cors", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			want{"cors", "none", "web", 403, false}},
		{"cors request let through", http.MethodGet, "/cors", map[string]string{"Origin": "https://ok.example"}, want{"cors", "a", "none", 200, false}},
		{"dead upstream", http.MethodGet, "/dead", nil, want{"dead", "dead", "none", 502, true}},
		{"upstream timeout", http.MethodGet, "/slow", nil, want{"slow", "hang", "none", 504, true}},
	}
	// Sequential: the rate-limit cases depend on their order, and each
	// access log line is matched to its request by position.
	for i, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.want.status {
			t.Fatalf("%s: status %d, want %d", c.name, resp.StatusCode, c.want.status)
		}
		var lines []map[string]any
		eventually(t, c.name+": access log line written", func() bool {
			lines = lines[:0]
			for _, l := range sink.lines() {
				var m map[string]any
				if json.Unmarshal(l, &m) == nil && m["message"] == "request" {
					lines = append(lines, m)
				}
			}
			return len(lines) >= i+1
		})
		if len(lines) != i+1 {
			t.Fatalf("%s: %d access log lines after %d requests:\n%s", c.name, len(lines), i+1, bytes.Join(sink.lines(), []byte("\n")))
		}
		got := lines[i]
		path, _ := url.PathUnescape(c.path)
		for k, v := range map[string]any{"route": c.want.route, "upstream": c.want.upstream, "policy": c.want.policy,
			"status": float64(c.want.status), "method": c.method, "path": path} {
			if got[k] != v {
				t.Errorf("%s: access log %s = %v, want %v (line %v)", c.name, k, got[k], v, got)
			}
		}
		if cause, _ := got["cause"].(string); (cause != "") != c.want.cause {
			t.Errorf("%s: access log cause %q, want one: %v", c.name, cause, c.want.cause)
		}
	}

	wantCounts := map[string]float64{}
	for _, c := range cases {
		wantCounts[c.want.route+"/"+c.want.upstream+"/"+c.want.policy+"/"+codeClass(c.want.status)]++
	}
	got := requestCounts(t, reg)
	for k, v := range wantCounts {
		if got[k] != v {
			t.Errorf("gitgate_requests_total{route/upstream/policy/code=%s} = %v, want %v", k, got[k], v)
		}
	}
	var total float64
	for _, v := range got {
		total += v
	}
	if total != float64(len(cases)) {
		t.Errorf("gitgate_requests_total sums to %v over %d requests: %v", total, len(cases), got)
	}
}

func codeClass(status int) string { return string(rune('0'+status/100)) + "xx" }

// TestUpstreamFailureLoggedWithoutAccessLog: with the access log off, an
// upstream failure is still logged, as a warning naming the route, the
// upstream, the target, the status and the cause.
func TestUpstreamFailureLoggedWithoutAccessLog(t *testing.T) {
	t.Parallel()
	var sink lockedBuffer
	e := newEngine(t, Options{Logger: zerolog.New(&sink)})
	dead := refusedURL(t)
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"dead": ups(dead)},
		Routes:    map[string]schemas.Route{"d": route("/", to("dead", 100))},
	})
	srv := front(t, e)
	if code, _, _ := get(t, srv.Client(), srv.URL+"/x", nil); code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", code)
	}
	var found map[string]any
	eventually(t, "failure logged", func() bool {
		for _, l := range sink.lines() {
			var m map[string]any
			if json.Unmarshal(l, &m) == nil && m["message"] == "upstream failed" {
				found = m
				return true
			}
		}
		return false
	})
	for k, v := range map[string]any{"level": "warn", "route": "d", "upstream": "dead", "target": dead, "status": float64(502)} {
		if found[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, found[k], v, found)
		}
	}
	if cause, _ := found["cause"].(string); !strings.Contains(cause, "connection refused") {
		t.Errorf("cause %q does not say the connection was refused", cause)
	}
}
