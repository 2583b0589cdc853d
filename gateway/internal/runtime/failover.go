package runtime

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/proxy"
	"github.com/gitgate/gitgate/schemas"
)

// buildFailovers builds the failover upstreams of cfg from the forwarders
// of the plain upstreams, adds their forwarders to forwarders (so routes
// name them like any upstream) and returns them by name. A failover
// upstream of prev with the same name hands over its active group.
// Problems go to addErr.
func buildFailovers(cfg *schemas.Config, forwarders map[string]*proxy.Forwarder, opts *proxy.Options, prev *snapshot, addErr func(error, string)) map[string]*proxy.Failover {
	var out map[string]*proxy.Failover
	plain := make(map[string]*proxy.Forwarder, len(forwarders))
	maps.Copy(plain, forwarders)
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		spec := cfg.Upstreams[name]
		if spec.Failover == nil {
			continue
		}
		var old *proxy.Failover
		if prev != nil {
			old = prev.failovers[name]
		}
		fo, err := proxy.NewFailover(name, spec, cfg.Upstreams, plain, opts, old)
		if err != nil {
			addErr(err, "upstreams."+name)
			continue
		}
		if out == nil {
			out = map[string]*proxy.Failover{}
		}
		out[name] = fo
		forwarders[name] = fo.Forwarder()
	}
	return out
}

// failoverStatus returns the state of s's failover upstreams, nil when
// there are none.
func failoverStatus(s *snapshot) map[string]client.FailoverStatus {
	if len(s.failovers) == 0 {
		return nil
	}
	out := make(map[string]client.FailoverStatus, len(s.failovers))
	for name, fo := range s.failovers {
		out[name] = client.FailoverStatus{Groups: fo.Groups(), Active: fo.ActiveGroup(), Changes: fo.Changes()}
	}
	return out
}

var descFailoverActive = prometheus.NewDesc("gitgate_upstream_failover_active",
	"1 for the group a failover upstream sends traffic to, 0 for its other groups.", []string{"upstream", "group"}, nil)

// collectFailovers reports the active group of each of s's failover
// upstreams.
func collectFailovers(s *snapshot, ch chan<- prometheus.Metric) {
	for name, fo := range s.failovers {
		active := fo.ActiveGroup()
		for _, g := range fo.Groups() {
			v := 0.0
			if g == active {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descFailoverActive, prometheus.GaugeValue, v, name, g)
		}
	}
}
