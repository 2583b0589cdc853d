package policy

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of an auth failure, the values of the "reason" label.
const (
	reasonMissing   = "missing"
	reasonInvalid   = "invalid"
	reasonExpired   = "expired"
	reasonForbidden = "forbidden"
)

// metrics are the policy collectors, registered once per registry.
type metrics struct {
	rateLimited  *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	// jwksRefreshes counts fetches of remote JWKS by policy and result;
	// jwksLastSuccess is when a policy's set was last fetched.
	jwksRefreshes   *prometheus.CounterVec
	jwksLastSuccess *prometheus.GaugeVec
	// jwksLive counts the running JWKS sources by policy name: the series
	// of a policy are deleted when its last source stops.
	// decisions counts rate-limit decisions by policy, store (local,
	// redis, none) and result; storeErrors the failed Redis round trips;
	// fallback is 1 while a store-redis policy decides by onStoreError.
	decisions   *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	fallback    *prometheus.GaugeVec
	// storeLive counts the Sets holding each store-redis policy: its
	// fallback and error series are deleted when the last one closes.
	storeMu   sync.Mutex
	storeLive map[string]int
	jwksMu    sync.Mutex
	jwksLive  map[string]int
}

// jwksStarted records a running source of policy.
func (m *metrics) jwksStarted(policy string) {
	m.jwksMu.Lock()
	defer m.jwksMu.Unlock()
	if m.jwksLive == nil {
		m.jwksLive = map[string]int{}
	}
	m.jwksLive[policy]++
}

// jwksStopped records a stopped source of policy and deletes the policy's
// series when no source of that name runs any more (the policy was
// removed or lost its jwksURL).
func (m *metrics) jwksStopped(policy string) {
	m.jwksMu.Lock()
	defer m.jwksMu.Unlock()
	if m.jwksLive[policy]--; m.jwksLive[policy] > 0 {
		return
	}
	delete(m.jwksLive, policy)
	m.jwksLastSuccess.DeleteLabelValues(policy)
	m.jwksRefreshes.DeleteLabelValues(policy, jwksResultOK)
	m.jwksRefreshes.DeleteLabelValues(policy, jwksResultError)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gitgate",
			Subsystem: "policy",
			Name:      "rate_limited_requests_total",
			Help:      "Requests refused with 429 by a rate-limit policy.",
		}, []string{"route", "policy"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gitgate",
			Subsystem: "policy",
			Name:      "auth_failures_total",
			Help:      "Requests refused by an apiKey, jwt, ipAllow or ipDeny policy, by reason (missing, invalid, expired, forbidden).",
		}, []string{"policy", "reason"}),
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gitgate",
			Subsystem: "policy",
			Name:      "jwks_refreshes_total",
			Help:      "Fetches of a jwt policy's jwksURL, by result (ok, error).",
		}, []string{"policy", "result"}),
		jwksLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "gitgate",
			Subsystem: "policy",
			Name:      "jwks_last_success_timestamp_seconds",
			Help:      "When a jwt policy's jwksURL was last fetched successfully (Unix seconds); the gateway serves that set while later fetches fail.",
		}, []string{"policy"}),
	}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gitgate",
		Subsystem: "policy",
		Name:      "rate_limit_decisions_total",
		Help:      "Rate-limit decisions by policy, store that decided (local, redis, or none when onStoreError allow let the request through) and result (allowed, limited).",
	}, []string{"policy", "store", "result"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gitgate",
		Subsystem: "policy",
		Name:      "rate_limit_store_errors_total",
		Help:      "Round trips to a rate limit's Redis store that failed or timed out.",
	}, []string{"policy"})
	m.fallback = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gitgate",
		Subsystem: "policy",
		Name:      "rate_limit_store_fallback",
		Help:      "1 while a store-redis rate limit cannot reach Redis and decides by its onStoreError (local or allow), else 0.",
	}, []string{"policy"})
	var err error
	if m.rateLimited, err = register(reg, m.rateLimited); err != nil {
		return nil, err
	}
	if m.decisions, err = register(reg, m.decisions); err != nil {
		return nil, err
	}
	if m.storeErrors, err = register(reg, m.storeErrors); err != nil {
		return nil, err
	}
	if m.fallback, err = register(reg, m.fallback); err != nil {
		return nil, err
	}
	if m.authFailures, err = register(reg, m.authFailures); err != nil {
		return nil, err
	}
	if m.jwksRefreshes, err = register(reg, m.jwksRefreshes); err != nil {
		return nil, err
	}
	if m.jwksLastSuccess, err = register(reg, m.jwksLastSuccess); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a registry shared by several compiles).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("registering collector: %w", err)
}

// authCounters are one policy's failure counters, resolved at compile time
// so the request path does no label lookups. The zero value counts nothing.
type authCounters struct {
	missing, invalid, expired, forbidden prometheus.Counter
}

func (s *Set) authCounters(policy string) authCounters {
	if s.metrics == nil {
		return authCounters{}
	}
	v := s.metrics.authFailures
	return authCounters{
		missing:   v.WithLabelValues(policy, reasonMissing),
		invalid:   v.WithLabelValues(policy, reasonInvalid),
		expired:   v.WithLabelValues(policy, reasonExpired),
		forbidden: v.WithLabelValues(policy, reasonForbidden),
	}
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// decisionCounters are one rate limit's decision counters, by store and
// result, resolved at compile time. The zero value counts nothing.
type decisionCounters struct {
	local, redis, none [2]prometheus.Counter // [0] limited, [1] allowed
}

func (m *metrics) decisionCounters(policy string) decisionCounters {
	var d decisionCounters
	for store, arr := range map[string]*[2]prometheus.Counter{storeLocal: &d.local, storeRedis: &d.redis, storeNone: &d.none} {
		arr[0] = m.decisions.WithLabelValues(policy, store, "limited")
		arr[1] = m.decisions.WithLabelValues(policy, store, "allowed")
	}
	return d
}

func (d *decisionCounters) inc(store string, ok bool) {
	i := 0
	if ok {
		i = 1
	}
	switch store {
	case storeRedis:
		inc(d.redis[i])
	case storeNone:
		inc(d.none[i])
	default:
		inc(d.local[i])
	}
}
