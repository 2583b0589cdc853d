package load

import (
	"testing"
	"time"
)

// TestSafetySection: the top-level safety section and a route's own one
// (written in another file than the route) are loaded and defaulted.
func TestSafetySection(t *testing.T) {
	t.Parallel()
	res, err := Dir("../../examples/canary", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Diagnostics {
		t.Fatal(d)
	}
	cfg := res.Config
	if cfg.Safety == nil {
		t.Fatal("safety section not loaded")
	}
	if got := cfg.Safety.BakeWindow.D(); got != 2*time.Minute {
		t.Errorf("bakeWindow = %s, want 2m", got)
	}
	tests := []struct {
		route       string
		errorRatio  float64
		minRequests int
	}{
		{route: "checkout", errorRatio: 0.01, minRequests: 200},
		{route: "checkout-forced-canary", errorRatio: 0.05, minRequests: 200},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			t.Parallel()
			r := cfg.SafetyFor(tt.route)
			if r.ErrorRatio != tt.errorRatio || r.MinRequests != tt.minRequests {
				t.Errorf("SafetyFor(%q) = %+v, want errorRatio %v minRequests %d", tt.route, r, tt.errorRatio, tt.minRequests)
			}
		})
	}
}
