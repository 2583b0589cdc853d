package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an apply attempt, the "result" label of
// gitgate_config_applies_total.
const (
	resultApplied   = "applied"
	resultUnchanged = "unchanged"
	resultRejected  = "rejected"
	resultFailed    = "failed"
)

// metrics are the per-config and admin metrics this package owns.
type metrics struct {
	applies       *prometheus.CounterVec
	applyDuration prometheus.Histogram
	info          *prometheus.GaugeVec
	lastSuccess   prometheus.Gauge
	lastSuccessAt prometheus.Gauge
	lkgFailures   prometheus.Counter
	streams       prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_config_applies_total",
			Help: "Bundles pushed to the gateway, by result: applied, unchanged, rejected (invalid), failed.",
		}, []string{"result"}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gitgate_config_apply_duration_seconds",
			Help:    "Time to verify, compile and swap in a bundle, successful or not.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_config_info",
			Help: "Always 1; the labels name the running bundle.",
		}, []string{"version", "digest"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_config_last_apply_success",
			Help: "1 when the last bundle pushed was applied (or unchanged), 0 when it was refused.",
		}),
		lastSuccessAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_config_last_apply_success_timestamp_seconds",
			Help: "Unix time of the last successful apply.",
		}),
		lkgFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitgate_admin_lkg_save_failures_total",
			Help: "Applied bundles that could not be saved as last-known-good.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_admin_watch_streams",
			Help: "Open watch requests (SSE streams and long-polls).",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.applies, m.applyDuration, m.info, m.lastSuccess, m.lastSuccessAt, m.lkgFailures, m.streams}
}

// outcome records the result of one attempt.
func (m *metrics) outcome(result string) {
	m.applies.WithLabelValues(result).Inc()
	if result == resultApplied || result == resultUnchanged {
		m.lastSuccess.Set(1)
	} else {
		m.lastSuccess.Set(0)
	}
}

// running records the bundle now served.
func (m *metrics) running(version, digest string, at time.Time) {
	m.info.Reset()
	m.info.WithLabelValues(version, digest).Set(1)
	m.lastSuccessAt.Set(float64(at.UnixNano()) / 1e9)
}
