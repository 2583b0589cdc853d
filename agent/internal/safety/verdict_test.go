package safety

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// bounds are the gateway's latency buckets (gateway/internal/traffic).
var bounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// counts builds the counts of n requests, of which e5 are 5xx, e4 4xx
// (t429 of them 429s), all fast (bucket 2, <= 5ms) except slow ones in
// bucket 10 (<= 2.5s).
func counts(n, e5, e4, t429, slow uint64) client.Counts {
	c := client.Counts{Requests: n, Latency: make([]uint64, len(bounds)+1)}
	c.Responses.Class5xx, c.Responses.Class4xx, c.Responses.Status429 = e5, e4, t429
	c.Responses.Class2xx = n - e5 - e4
	c.Latency[2], c.Latency[10] = n-slow, slow
	return c
}

// route is one route's traffic with its backends by upstream name.
func route(backends map[string]client.Counts) client.RouteTraffic {
	rt := client.RouteTraffic{Backends: backends}
	for _, b := range backends {
		rt.Counts = sum(rt.Counts, b)
	}
	return rt
}

func one(c client.Counts) client.RouteTraffic {
	return route(map[string]client.Counts{"stable": c})
}

func traffic(version string, routes map[string]client.RouteTraffic) *client.Traffic {
	return &client.Traffic{Version: version, Routes: routes}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	base := &schemas.Config{Safety: &schemas.Safety{}}
	with4xx := &schemas.Config{Safety: &schemas.Safety{SafetyRule: schemas.SafetyRule{ErrorStatuses: []string{"4xx", "5xx"}}}}
	report := &schemas.Config{Safety: &schemas.Safety{SafetyRule: schemas.SafetyRule{Action: schemas.SafetyReport}}}
	healthy := one(counts(1000, 2, 0, 0, 0))
	tests := []struct {
		name       string
		cfg        *schemas.Config
		cur, prev  map[string]client.RouteTraffic
		routes     map[string]bool
		want       Outcome
		wantAction string
		reason     string // a substring of the reason
	}{
		{
			name: "5xx breach against the previous version",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1240, 384, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: Breach, wantAction: "rollback",
			reason: "5xx 31.0% over 1,240 requests on route shop, baseline 0.2%",
		},
		{
			name: "latency breach: p99 from 5ms to 2.5s",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 0, 0, 0, 50))},
			prev: map[string]client.RouteTraffic{"shop": one(counts(1000, 0, 0, 0, 0))},
			want: Breach, wantAction: "rollback",
			reason: "p99 latency <= 2.5s over 1,000 requests on route shop, baseline <= 5ms",
		},
		{
			name: "1% background errors before and after",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 10, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": one(counts(5000, 50, 0, 0, 0))},
			want: OK,
		},
		{
			name: "a version as bad as the one before is no regression",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 200, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": one(counts(1000, 195, 0, 0, 0))},
			want: OK,
		},
		{
			name:   "below the minimum requests",
			cfg:    base,
			cur:    map[string]client.RouteTraffic{"shop": one(counts(99, 99, 0, 0, 0))},
			prev:   map[string]client.RouteTraffic{"shop": healthy},
			want:   Insufficient,
			reason: "99 of 100 requests needed on route shop",
		},
		{
			name: "upstream 429s are never errors, even with 4xx counted",
			cfg:  with4xx,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 0, 600, 600, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: OK,
		},
		{
			name: "4xx excluded by default",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 0, 600, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: OK,
		},
		{
			name: "4xx counted when asked",
			cfg:  with4xx,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 0, 600, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: Breach, wantAction: "rollback",
			reason: "4xx+5xx 60.0% over 1,000 requests on route shop",
		},
		{
			name: "a change to another route leaves a failing route unjudged",
			cfg:  base,
			cur: map[string]client.RouteTraffic{
				"shop":  one(counts(1000, 500, 0, 0, 0)),
				"about": one(counts(1000, 0, 0, 0, 0)),
			},
			prev: map[string]client.RouteTraffic{
				"shop":  healthy,
				"about": one(counts(1000, 0, 0, 0, 0)),
			},
			routes: map[string]bool{"about": true},
			want:   OK,
		},
		{
			name: "baseline from the same route only",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 30, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{
				"shop":  one(counts(1000, 25, 0, 0, 0)),
				"other": one(counts(100000, 0, 0, 0, 0)),
			},
			want: OK,
		},
		{
			name: "canary worse than stable in the same window, no previous version",
			cfg:  base,
			cur: map[string]client.RouteTraffic{"shop": route(map[string]client.Counts{
				"stable": counts(900, 1, 0, 0, 0),
				"canary": counts(300, 40, 0, 0, 0),
			})},
			want: Breach, wantAction: "rollback",
			reason: "5xx 13.3% over 300 requests on route shop backend canary, other backends 0.1%",
		},
		{
			name: "no baseline: only the absolute ratio",
			cfg:  base,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 40, 0, 0, 0))},
			want: OK,
		},
		{
			name: "action report",
			cfg:  report,
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 500, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: Breach, wantAction: "report",
		},
		{
			name: "a route's own stricter threshold",
			cfg: &schemas.Config{Safety: &schemas.Safety{}, Routes: map[string]schemas.Route{
				"shop": {Safety: &schemas.SafetyRule{ErrorRatio: 0.01, ErrorRatioIncrease: 0.005}},
			}},
			cur:  map[string]client.RouteTraffic{"shop": one(counts(1000, 20, 0, 0, 0))},
			prev: map[string]client.RouteTraffic{"shop": healthy},
			want: Breach, wantAction: "rollback",
			reason: "5xx 2.0% over 1,000 requests on route shop, baseline 0.2%",
		},
		{
			name: "a maintenance page's own 503s are no regression",
			cfg: &schemas.Config{Safety: &schemas.Safety{}, Routes: map[string]schemas.Route{
				"shop": {DirectResponse: &schemas.DirectResponse{Status: 503, Body: "back soon"}},
				"cart": {Backends: []schemas.Backend{{Upstream: "cart", Weight: 100}}},
			}},
			cur:    map[string]client.RouteTraffic{"shop": route(map[string]client.Counts{"(direct)": counts(1000, 1000, 0, 0, 0)}), "cart": healthy},
			prev:   map[string]client.RouteTraffic{"shop": healthy, "cart": healthy},
			want:   OK,
			reason: "",
		},
		{
			name:   "no traffic at all",
			cfg:    base,
			cur:    map[string]client.RouteTraffic{},
			want:   Insufficient,
			reason: "no traffic",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := Input{Config: tt.cfg, Current: traffic("new", tt.cur), Bounds: bounds, Routes: tt.routes}
			if tt.prev != nil {
				in.Previous = traffic("old", tt.prev)
			}
			v := Judge(in)
			if v.Outcome != tt.want || v.Action != tt.wantAction {
				t.Fatalf("outcome %q action %q (%s), want %q action %q", v.Outcome, v.Action, v.Reason, tt.want, tt.wantAction)
			}
			if !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, tt.reason)
			}
		})
	}
}

func TestStreak(t *testing.T) {
	t.Parallel()
	b, ok, few := Verdict{Outcome: Breach}, Verdict{Outcome: OK}, Verdict{Outcome: Insufficient}
	tests := []struct {
		name string
		seq  []Verdict
		want int
	}{
		{"two breaches", []Verdict{b, b}, 2},
		{"ok in between", []Verdict{b, ok, b}, 1},
		{"insufficient traffic resets", []Verdict{b, few, b}, 1},
		{"none", []Verdict{ok, few}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s Streak
			for _, v := range tt.seq {
				s = s.Next(v)
			}
			if s.Breaches != tt.want {
				t.Errorf("breaches %d, want %d", s.Breaches, tt.want)
			}
		})
	}
}
