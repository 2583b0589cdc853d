package runtime

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/schemas"
)

// TestPoliciesSeeTrustedProxyClientIP checks that ipAllow uses the same
// client address as the proxy: the right-most untrusted X-Forwarded-For
// entry behind a trusted proxy, the peer otherwise.
func TestPoliciesSeeTrustedProxyClientIP(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	e := newEngine(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	r := route("/", to("a", 100))
	r.Policies = []string{"office"}
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)},
		Routes:    map[string]schemas.Route{"r": r},
		Policies:  map[string]schemas.Policy{"office": {IPAllow: &schemas.IPList{CIDRs: []string{"203.0.113.0/24"}}}},
	})
	cases := []struct {
		name, peer, xff string
		want            int
	}{
		{"office client behind trusted proxy", "10.1.2.3:5000", "203.0.113.7", http.StatusOK},
		{"spoofed office entry left of the real client", "10.1.2.3:5000", "203.0.113.7, 198.51.100.9", http.StatusForbidden},
		{"untrusted peer claiming an office address", "198.51.100.9:5000", "203.0.113.7", http.StatusForbidden},
		{"office peer without proxy", "203.0.113.8:5000", "", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

// TestUnknownPolicyReportedOnce checks that a route naming an undefined
// policy gets one diagnostic, not one from the runtime and one from policy.
func TestUnknownPolicyReportedOnce(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	r := route("/", to("a", 100))
	r.Policies = []string{"nope"}
	err := e.Apply(bundleOf(t, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups("http://127.0.0.1:1")}, Routes: map[string]schemas.Route{"r": r}}))
	inv := invalid(t, err)
	n := 0
	for _, d := range inv.Diagnostics {
		if d.Path == "routes.r.policies[0]" {
			n++
			if !strings.Contains(d.Message, `"nope"`) {
				t.Errorf("message %q does not name the policy", d.Message)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d diagnostics at routes.r.policies[0], want 1: %v", n, inv)
	}
}

// TestApplyForgetsRemovedRouteMetrics checks that the series of a route
// that an apply removes leave the registry, and those of kept routes stay.
func TestApplyForgetsRemovedRouteMetrics(t *testing.T) {
	t.Parallel()
	a := named(t, "a")
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{Registry: reg})
	upstreams := map[string]schemas.Upstream{"a": ups(a.URL)}
	mustApply(t, e, schemas.Config{Upstreams: upstreams, Routes: map[string]schemas.Route{"old": route("/old", to("a", 100)), "kept": route("/kept", to("a", 100))}})
	for _, p := range []string{"/old/x", "/kept/x"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, rec.Code)
		}
	}
	series := func(route string) int {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "route" && l.GetValue() == route {
						count++
					}
				}
			}
		}
		return count
	}
	if series("old") == 0 || series("kept") == 0 {
		t.Fatalf("series before: old %d, kept %d", series("old"), series("kept"))
	}
	mustApply(t, e, schemas.Config{Upstreams: upstreams, Routes: map[string]schemas.Route{"kept": route("/kept", to("a", 100))}})
	if n := series("old"); n != 0 {
		t.Errorf("%d series of removed route old remain", n)
	}
	if series("kept") == 0 {
		t.Error("series of kept route were dropped")
	}
}

// TestGCTarget checks the GC target New sets: DefaultGCPercent or the
// option when GOGC is unset, nothing when GOGC is set or the option is
// negative.
func TestGCTarget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		percent int
		env     map[string]string
		want    int
	}{
		{"default", 0, nil, DefaultGCPercent},
		{"option", 200, nil, 200},
		{"GOGC set", 0, map[string]string{"GOGC": "100"}, 0},
		{"GOGC off", 300, map[string]string{"GOGC": "off"}, 0},
		{"negative percent", -1, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := gcTarget(tc.percent, func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
			})
			if got != tc.want {
				t.Fatalf("gcTarget = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSplitAndPoliciesShareTheClient checks that the sticky split and the
// policies read one client address, decided once per request: behind
// trusted proxies, a client named with a port in X-Forwarded-For is let in
// by ipAllow and sticks to one backend whichever proxy it comes through.
func TestSplitAndPoliciesShareTheClient(t *testing.T) {
	t.Parallel()
	a, b := named(t, "a"), named(t, "b")
	e := newEngine(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	r := route("/", to("a", 50), to("b", 50))
	r.Split = &schemas.Split{HashOn: schemas.HashOn{ClientIP: true}}
	r.Policies = []string{"office"}
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"a": ups(a.URL), "b": ups(b.URL)},
		Routes:    map[string]schemas.Route{"r": r},
		Policies:  map[string]schemas.Policy{"office": {IPAllow: &schemas.IPList{CIDRs: []string{"198.51.100.0/24"}}}},
	})
	cases := []struct{ name, xff string }{
		{"bare address", "198.51.100.7"},
		{"address with a port", "198.51.100.7:4000"},
		{"behind a second trusted proxy", "198.51.100.7:4000, 10.9.9.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := map[string]int{}
			for i := 1; i <= 16; i++ {
				req := httptest.NewRequest(http.MethodGet, "/x", nil)
				req.RemoteAddr = fmt.Sprintf("10.0.0.%d:5000", i)
				req.Header.Set("X-Forwarded-For", tc.xff)
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("via proxy 10.0.0.%d: status %d, want 200 (body %s)", i, rec.Code, rec.Body)
				}
				seen[rec.Header().Get("X-Upstream")]++
			}
			if len(seen) != 1 {
				t.Fatalf("one client went to several backends through different proxies: %v", seen)
			}
		})
	}
}
