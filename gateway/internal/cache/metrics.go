package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cache's Prometheus collectors. All methods accept a nil
// *metrics and do nothing then.
type metrics struct {
	hits, misses, bypasses, stores *prometheus.CounterVec
	evictions                      prometheus.Counter
}

// routeCounters are one route's series, looked up once per handler, in
// the order of the count constants.
type routeCounters [4]prometheus.Counter

// What a route's counter counts.
const (
	countHit = iota
	countMiss
	countBypass
	countStore
)

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	byRoute := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"route"})
	}
	m := &metrics{
		hits:      byRoute("gitgate_cache_hits_total", "Requests answered from the response cache (a fresh entry, or the response of a miss in flight that the request waited for), by route."),
		misses:    byRoute("gitgate_cache_misses_total", "Cacheable requests sent upstream because no fresh entry answered them, by route."),
		bypasses:  byRoute("gitgate_cache_bypasses_total", "Requests of a cached route that the cache does not handle (a method not cached, Range, a body, an upgrade), by route."),
		stores:    byRoute("gitgate_cache_stores_total", "Responses stored in the cache, by route."),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "gitgate_cache_evictions_total", Help: "Entries evicted to keep the cache within --cache-max-bytes."}),
	}
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gitgate_cache_bytes", Help: "Bytes held by the response cache's entries (estimated)."},
		func() float64 { return float64(s.Stats().Bytes) })
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gitgate_cache_entries", Help: "Entries in the response cache."},
		func() float64 { return float64(s.Stats().Entries) })
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.bypasses, m.stores, m.evictions, bytes, entries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering cache metrics: %w", err)
		}
	}
	return m, nil
}

// route returns the counters of route, nil without metrics.
func (m *metrics) route(route string) *routeCounters {
	if m == nil {
		return nil
	}
	return &routeCounters{m.hits.WithLabelValues(route), m.misses.WithLabelValues(route),
		m.bypasses.WithLabelValues(route), m.stores.WithLabelValues(route)}
}

// forget drops the series of a route that no longer caches.
func (m *metrics) forget(route string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.CounterVec{m.hits, m.misses, m.bypasses, m.stores} {
		v.DeleteLabelValues(route)
	}
}

func (m *metrics) evicted() {
	if m != nil {
		m.evictions.Inc()
	}
}

// inc counts one of what (a count constant); a nil c counts nothing.
func (c *routeCounters) inc(what int) {
	if c != nil {
		c[what].Inc()
	}
}
