package serve

import (
	"context"
	"net/http"
	"slices"
	"testing"
)

// TestExampleGeoFailover runs examples/geo-failover in a gateway process:
// requests are routed by the CDN's country header to the failover upstream
// of their region, and GET /v1/status on the admin socket shows each
// failover upstream's groups with its own region active.
func TestExampleGeoFailover(t *testing.T) {
	t.Parallel()
	g := startExample(t, "geo-failover", nil)
	tests := []struct {
		name     string
		country  string // "": no header
		upstream string // the group that answers
	}{
		{"Germany to the eu group", "DE", "api-eu"},
		{"Sweden to the eu group", "SE", "api-eu"},
		{"Japan to the us group", "JP", "api-us"},
		{"no header to the us group", "", "api-us"},
		{"anchored regex: DEU is not DE", "DEU", "api-us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.country != "" {
				h.Set("CF-IPCountry", tt.country)
			}
			a := g.do(t, "GET", "api.example.com", "/api/orders", h)
			if a.status != 200 || a.echo.Upstream != tt.upstream {
				t.Fatalf("got %d from %q, want 200 from %s (body %s)", a.status, a.echo.Upstream, tt.upstream, a.body)
			}
		})
	}
	t.Run("status shows the failover upstreams", func(t *testing.T) {
		t.Parallel()
		st, err := g.admin.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string][]string{"api-eu-first": {"api-eu", "api-us"}, "api-us-first": {"api-us", "api-eu"}} {
			f, ok := st.Failover[name]
			if !ok || !slices.Equal(f.Groups, want) || f.Active != want[0] {
				t.Errorf("status of %s: %+v (present %v), want groups %v with %s active", name, f, ok, want, want[0])
			}
		}
	})
}
