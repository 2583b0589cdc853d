package runtime

import "github.com/prometheus/client_golang/prometheus"

var (
	descBreaker = prometheus.NewDesc("gitgate_upstream_breaker_state",
		"Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.", []string{"upstream"}, nil)
	descHealthy = prometheus.NewDesc("gitgate_upstream_target_healthy",
		"1 when the target takes traffic (healthy and not ejected), else 0.", []string{"upstream", "target"}, nil)
)

// upstreamCollector reports the state of the running snapshot's upstreams
// at scrape time, so the request path pays nothing for it.
type upstreamCollector struct{ e *Engine }

// Describe sends the descriptors of the upstream metrics.
func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
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
		for _, t := range p.Status() {
			v := 0.0
			if t.Healthy && !t.Ejected {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, v, name, t.URL)
		}
	}
}
