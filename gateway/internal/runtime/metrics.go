package runtime

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descBreaker = prometheus.NewDesc("gitgate_upstream_breaker_state",
		"Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.", []string{"upstream"}, nil)
	descHealthy = prometheus.NewDesc("gitgate_upstream_target_healthy",
		"1 when the target takes traffic (healthy and not ejected), else 0.", []string{"upstream", "target"}, nil)
	descMembers = prometheus.NewDesc("gitgate_upstream_members",
		"Targets of the upstream (the members of a dns:// or srv:// target), draining ones excluded.", []string{"upstream"}, nil)
	descResolutions = prometheus.NewDesc("gitgate_upstream_dns_resolutions_total",
		"Resolutions of an upstream's dns:// or srv:// target by result: ok, empty or failed (the last good members are kept).", []string{"upstream", "result"}, nil)
	descSinceGood = prometheus.NewDesc("gitgate_upstream_dns_last_success_age_seconds",
		"Seconds since a resolution of the upstream's dns:// or srv:// target last gave members; absent before the first.", []string{"upstream"}, nil)
)

// upstreamCollector reports the state of the running snapshot's upstreams
// at scrape time, so the request path pays nothing for it.
type upstreamCollector struct{ e *Engine }

// Describe sends the descriptors of the upstream metrics.
func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMembers
	ch <- descResolutions
	ch <- descSinceGood
	ch <- descBreaker
	ch <- descHealthy
	ch <- descFailoverActive
}

// Collect reads the current snapshot's pools.
func (c upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.acquire()
	if s == nil {
		return
	}
	defer s.unref()
	collectFailovers(s, ch)
	for name, p := range s.pools {
		if b := p.Breaker(); b != nil {
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, float64(b.State()), name)
		}
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(len(p.Targets())), name)
		if d := p.Discovery(); d != nil {
			for result, n := range d.Resolutions {
				ch <- prometheus.MustNewConstMetric(descResolutions, prometheus.CounterValue, float64(n), name, result)
			}
			if !d.LastSuccess.IsZero() {
				ch <- prometheus.MustNewConstMetric(descSinceGood, prometheus.GaugeValue, time.Since(d.LastSuccess).Seconds(), name)
			}
		}
		for _, t := range p.Status() {
			v := 0.0
			if t.Healthy && !t.Ejected {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, v, name, t.URL)
		}
	}
}
