package syncer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the loop's Prometheus collectors.
type Metrics struct {
	// GatewayVersion is 1 for the version the gateway last said it runs,
	// which differs from Applied while someone edits the gateway by hand.
	GatewayVersion *prometheus.GaugeVec

	Syncs       *prometheus.CounterVec
	HeadChecks  *prometheus.CounterVec
	Fetches     prometheus.Counter
	FetchTime   prometheus.Histogram
	LastSuccess prometheus.Gauge
	Applied     *prometheus.GaugeVec
	PushApply   prometheus.Histogram
	// AutoRollbacks counts automatic rollbacks after a regression.
	AutoRollbacks prometheus.Counter
	// PinWrites counts writes of the fleet pin to the config repository by
	// op (set, lift, resume) and result (ok, conflict, readonly, error).
	PinWrites *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		GatewayVersion: newGatewayVersion(reg),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_syncs_total", Help: "Sync attempts by result.",
		}, []string{"result"}),
		HeadChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_head_checks_total", Help: "Remote head checks by result (ok, error).",
		}, []string{"result"}),
		Fetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_agent_fetches_total", Help: "Fetches run because the head moved.",
		}),
		FetchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gitgate_agent_fetch_duration_seconds", Help: "Head check plus fetch time when the head moved.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_agent_last_successful_sync_timestamp_seconds", Help: "Unix time of the last sync pass without error.",
		}),
		Applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_agent_applied_info", Help: "1 for the version the agent last applied.",
		}, []string{"version"}),
		PushApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gitgate_agent_push_to_apply_seconds", Help: "From the start of a sync pass to the gateway's answer for a new commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		AutoRollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_agent_auto_rollbacks_total", Help: "Automatic rollbacks of a version that regressed during its bake window.",
		}),
		PinWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_pin_writes_total", Help: "Writes of the fleet pin to the config repository by op (set, lift on fix-forward, resume) and result (ok, conflict, readonly, error).",
		}, []string{"op", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Syncs, m.HeadChecks, m.Fetches, m.FetchTime, m.LastSuccess, m.Applied, m.PushApply, m.AutoRollbacks, m.PinWrites)
	}
	return m
}

// newGatewayVersion creates gitgate_agent_gateway_version_info and
// registers it with reg (nil: not registered).
func newGatewayVersion(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gitgate_agent_gateway_version_info",
		Help: "1 for the version the gateway ran at the agent's last status call (none while unreachable); differs from gitgate_agent_applied_info during a hand-edit.",
	}, []string{"version"})
	if reg != nil {
		reg.MustRegister(g)
	}
	return g
}
