package schemas

import (
	"reflect"
	"testing"
	"time"
)

// TestSafetyFor: a route's thresholds are its own fields, then the
// top-level section's, then the defaults.
func TestSafetyFor(t *testing.T) {
	t.Parallel()
	defaults := SafetyRule{MinRequests: 100, ErrorRatio: 0.05, ErrorRatioIncrease: 0.02, LatencyP99Factor: 2,
		LatencyP99Margin: Duration(50 * time.Millisecond), ErrorStatuses: []string{"5xx"}, Action: "rollback"}
	tests := []struct {
		name  string
		cfg   Config
		route string
		want  SafetyRule
	}{
		{name: "no section: defaults", route: "shop", want: defaults},
		{
			name:  "top-level fields override defaults",
			cfg:   Config{Safety: &Safety{SafetyRule: SafetyRule{MinRequests: 500, Action: SafetyReport}}},
			route: "shop",
			want: func() SafetyRule {
				r := defaults
				r.MinRequests, r.Action = 500, SafetyReport
				return r
			}(),
		},
		{
			name: "route fields override top-level ones",
			cfg: Config{
				Safety: &Safety{SafetyRule: SafetyRule{MinRequests: 500, ErrorRatio: 0.2}},
				Routes: map[string]Route{"shop": {Safety: &SafetyRule{ErrorRatio: 0.01, ErrorStatuses: []string{"4xx", "5xx"}}}},
			},
			route: "shop",
			want: func() SafetyRule {
				r := defaults
				r.MinRequests, r.ErrorRatio, r.ErrorStatuses = 500, 0.01, []string{"4xx", "5xx"}
				return r
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cfg.SafetyFor(tt.route); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SafetyFor(%q) = %+v, want %+v", tt.route, got, tt.want)
			}
		})
	}
}

// TestSafetyDefaultsIdempotent: defaulting a safety section twice, or a
// copy (WithDefaults), changes nothing more and leaves the original as
// written.
func TestSafetyDefaultsIdempotent(t *testing.T) {
	t.Parallel()
	c := Config{Safety: &Safety{BakeWindow: Duration(3 * time.Second)}}
	w := c.WithDefaults()
	if c.Safety.Breaches != 0 {
		t.Fatalf("WithDefaults wrote to the original: %+v", c.Safety)
	}
	if w.Safety.CheckInterval.D() != 3*time.Second {
		t.Errorf("checkInterval = %s, want the bake window 3s when it is shorter than the default", w.Safety.CheckInterval.D())
	}
	again := w.WithDefaults()
	if !reflect.DeepEqual(w.Safety, again.Safety) {
		t.Errorf("not idempotent: %+v then %+v", w.Safety, again.Safety)
	}
}
