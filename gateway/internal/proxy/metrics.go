package proxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data plane's Prometheus collectors. Label names are
// constant: route, upstream, code (a class such as "2xx").
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	retries  *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_requests_total", Help: "Requests served, by route, upstream and status class.",
		}, []string{"route", "upstream", "code"}),
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
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering proxy metrics: %w", err)
		}
	}
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
		bm.codes[i] = m.requests.WithLabelValues(rt.name, be.name, c)
	}
	be.metrics.Store(bm)
	return bm
}

func (rt *Route) countRetry(be *backend) {
	if rt.opts.Metrics != nil {
		rt.backendMetrics(be).retries.Inc()
	}
}

func (rt *Route) observe(r *http.Request, be *backend, rec *recorder, start time.Time) {
	d := time.Since(start)
	if rt.opts.Metrics != nil {
		bm := rt.backendMetrics(be)
		class := rec.status / 100
		if class < 1 || class > 5 {
			class = 0
		}
		bm.codes[class].Inc()
		bm.latency.Observe(d.Seconds())
	}
	if rt.opts.AccessLog {
		rt.opts.Logger.Info().
			Str("route", rt.name).
			Str("upstream", be.name).
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", rec.status).
			Int64("bytes", rec.bytes).
			Dur("duration", d).
			Str("version", rt.version).
			Msg("request")
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
