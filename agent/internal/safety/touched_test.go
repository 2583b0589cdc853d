package safety

import (
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestTouchedFollowsFailoverGroups checks which routes a change touches
// when a route's backend is a failover upstream: a change to one of its
// groups touches the route, as a change to a plain backend upstream does.
func TestTouchedFollowsFailoverGroups(t *testing.T) {
	t.Parallel()
	base := func() schemas.Config {
		return schemas.Config{
			Upstreams: map[string]schemas.Upstream{
				"eu":    {Targets: []string{"http://10.1.0.1:80"}},
				"us":    {Targets: []string{"http://10.2.0.1:80"}},
				"other": {Targets: []string{"http://10.3.0.1:80"}},
				"api":   {Failover: &schemas.Failover{Groups: []string{"eu", "us"}}},
			},
			Routes: map[string]schemas.Route{"r": {Backends: []schemas.Backend{{Upstream: "api", Weight: 100}}}},
		}
	}
	tests := []struct {
		name   string
		change func(c *schemas.Config)
		want   bool // route r touched
	}{
		{"a group's targets change", func(c *schemas.Config) { c.Upstreams["us"] = schemas.Upstream{Targets: []string{"http://10.2.0.9:80"}} }, true},
		{"the groups are reordered", func(c *schemas.Config) {
			c.Upstreams["api"] = schemas.Upstream{Failover: &schemas.Failover{Groups: []string{"us", "eu"}}}
		}, true},
		{"an upstream outside the failover changes", func(c *schemas.Config) {
			c.Upstreams["other"] = schemas.Upstream{Targets: []string{"http://10.3.0.9:80"}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := base()
			tt.change(&next)
			got := touched(bundleOf("old", base()), bundleOf("new", next))
			if got["r"] != tt.want {
				t.Fatalf("route r touched: %v, want %v", got["r"], tt.want)
			}
		})
	}
}
