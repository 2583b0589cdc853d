package proxy

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data plane's Prometheus collectors. Label names are
// constant: route, upstream, policy (None when the request got past its
// policies), code (the status class, such as "2xx", of the answer the
// client got, whoever wrote it).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	retries  *prometheus.CounterVec
	// failovers counts changes of a failover upstream's active group.
	failovers *prometheus.CounterVec
	// unrouted are the series of requests no route matched.
	unrouted struct {
		codes   [6]prometheus.Counter
		latency prometheus.Observer
	}
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_requests_total",
			Help: "Requests answered, by route, upstream and the policy that answered (\"none\" for each when none did) and status class.",
		}, []string{"route", "upstream", "policy", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitgate_request_duration_seconds", Help: "Time from request to the end of the response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "upstream"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitgate_requests_in_flight", Help: "Requests being served, by route.",
		}, []string{"route"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_retries_total", Help: "Retried attempts, by route and upstream.",
		}, []string{"route", "upstream"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_upstream_failovers_total", Help: "Changes of a failover upstream's active group, by upstream and the groups it moved from and to.",
		}, []string{"upstream", "from", "to"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight, m.retries, m.failovers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering proxy metrics: %w", err)
		}
	}
	for i, c := range codeClasses {
		m.unrouted.codes[i] = m.requests.WithLabelValues(None, None, None, c)
	}
	m.unrouted.latency = m.latency.WithLabelValues(None, None)
	return m, nil
}

// Forget drops the series of a route that no longer exists.
func (m *Metrics) Forget(route string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"route": route}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
}

// routeMetrics and backendMetrics are resolved once per route and backend,
// on first use, so the request path never looks labels up.
type routeMetrics struct{ inFlight prometheus.Gauge }

type backendMetrics struct {
	codes   [6]prometheus.Counter // index: status / 100, 0 for anything else
	latency prometheus.Observer
	retries prometheus.Counter
}

var codeClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (rt *Route) backendMetrics(be *backend) *backendMetrics {
	if bm := be.metrics.Load(); bm != nil {
		return bm
	}
	m := rt.opts.Metrics
	bm := &backendMetrics{
		latency: m.latency.WithLabelValues(rt.name, be.name),
		retries: m.retries.WithLabelValues(rt.name, be.name),
	}
	for i, c := range codeClasses {
		bm.codes[i] = m.requests.WithLabelValues(rt.name, be.name, None, c)
	}
	be.metrics.Store(bm)
	return bm
}

func (rt *Route) countRetry(be *backend) {
	if rt.opts.Metrics != nil {
		rt.backendMetrics(be).retries.Inc()
	}
}

// inFlightGauge returns the route's in-flight gauge, resolved on first
// use; nil without metrics.
func (rt *Route) inFlightGauge() prometheus.Gauge {
	m := rt.opts.Metrics
	if m == nil {
		return nil
	}
	rm := rt.metrics.Load()
	if rm == nil {
		rm = &routeMetrics{inFlight: m.inFlight.WithLabelValues(rt.name)}
		rt.metrics.Store(rm)
	}
	return rm.inFlight
}

// recorder captures the status and size of a response. Unwrap lets
// http.ResponseController reach Flush and Hijack of the real writer.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	} else if code == http.StatusSwitchingProtocols {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush forwards to the real writer when it can flush.
func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap returns the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
