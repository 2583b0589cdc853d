// Package tracing exports the gateway's server spans over OTLP/HTTP
// (protobuf) with the OpenTelemetry Go SDK's tracer provider and batch
// processor, and an exporter of its own (see httpExporter). It exists only when
// --otlp-endpoint is set: with no endpoint nothing of it is created and the
// data plane pays nothing for it.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"

	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/schemas"
)

// ServiceName is the service.name of the gateway's spans, unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const ServiceName = "gitgate-gateway"

// Defaults of Config.
const (
	DefaultQueueSize    = 2048
	DefaultBatchSize    = 512
	DefaultBatchTimeout = 5 * time.Second
	// DefaultExportTimeout bounds one export (there is no retry: a batch
	// the endpoint does not take is lost and counted as failed).
	DefaultExportTimeout = 10 * time.Second
)

// Log field names used by this package.
const (
	logComponent = "component"
	logEndpoint  = "endpoint"
	logSpans     = "spans"
	logSampling  = "sampling"
)

// Config configures the span export.
type Config struct {
	// Endpoint is the OTLP/HTTP URL spans are sent to. A URL without a
	// path gets the standard /v1/traces. http: sends in clear text.
	Endpoint string
	// Sampling is the share (0 to 1) of new traces whose spans are
	// exported. A request whose traceparent says sampled or not sampled is
	// followed (parent-based).
	Sampling float64
	// Headers are sent with every export (authorization, tenant): values
	// resolved from their secret references, never logged.
	Headers map[string]string
	// Version is the service.version of the spans.
	Version string
	// QueueSize bounds the spans waiting for export; beyond it spans are
	// dropped, never waited for. 0: DefaultQueueSize.
	QueueSize int
	// BatchTimeout is the longest a span waits before its batch is sent.
	// 0: DefaultBatchTimeout.
	BatchTimeout time.Duration
	// Registry receives the export's counters. Nil: none.
	Registry prometheus.Registerer
	// Logger receives export failures (at most a few per minute).
	Logger zerolog.Logger
}

// Exporter owns the tracer provider, its batch processor and its
// goroutine; Shutdown flushes and stops them.
type Exporter struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// CheckEndpoint returns the URL spans are sent to for endpoint: an
// absolute http or https URL, /v1/traces added when it has no path.
func CheckEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("OTLP endpoint %q is not a URL: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q is not an http:// or https:// URL with a host", endpoint)
	}
	if u.User != nil {
		return "", fmt.Errorf("OTLP endpoint %q carries credentials: pass them with --otlp-header NAME=env:VAR", u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// CheckSampling checks that ratio is a share from 0 to 1.
func CheckSampling(ratio float64) error {
	if !(ratio >= 0 && ratio <= 1) { // NaN fails too
		return fmt.Errorf("trace sampling %v is not between 0 and 1", ratio)
	}
	return nil
}

// ParseHeader parses an export header flag, NAME=env:VAR or
// NAME=file:PATH, and resolves its value with src. A literal value is
// refused so that no secret sits on a command line; errors name the
// reference, never the value.
func ParseHeader(flag string, src secretref.Source) (name, value string, err error) {
	name, ref, ok := strings.Cut(flag, "=")
	if !ok || !httpguts.ValidHeaderFieldName(name) {
		return "", "", fmt.Errorf("OTLP header %q is not NAME=env:VAR or NAME=file:PATH", flag)
	}
	var sr schemas.SecretRef
	switch kind, arg, _ := strings.Cut(ref, ":"); kind {
	case "env":
		sr.Env = arg
	case "file":
		sr.File = arg
	default:
		return "", "", fmt.Errorf("OTLP header %s: the value must be a reference, env:VAR or file:PATH", name)
	}
	v, err := src.Resolve(&sr)
	if err != nil {
		return "", "", fmt.Errorf("OTLP header %s: %w", name, err)
	}
	if !httpguts.ValidHeaderFieldValue(string(v)) {
		return "", "", fmt.Errorf("OTLP header %s: the value of %s is not a valid header value", name, sr)
	}
	return name, string(v), nil
}

// New starts the export of spans to cfg.Endpoint. Nothing is sent until a
// span ends; an endpoint that is down costs dropped spans, counted, never
// a blocked request.
func New(ctx context.Context, cfg Config) (*Exporter, error) {
	endpoint, err := CheckEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if err := CheckSampling(cfg.Sampling); err != nil {
		return nil, err
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	batch := min(DefaultBatchSize, cfg.QueueSize)
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	// The exporter's own transport, so that Shutdown closes its kept-alive
	// connections.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 2
	client := &httpExporter{
		client:  &http.Client{Transport: transport, Timeout: DefaultExportTimeout},
		url:     endpoint,
		headers: cfg.Headers,
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceVersion(cfg.Version)),
		resource.WithHost(),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	lg := cfg.Logger.With().Str(logComponent, "tracing").Logger()
	if err != nil {
		if res == nil {
			return nil, fmt.Errorf("describing the gateway's resource: %w", err)
		}
		// A malformed OTEL_RESOURCE_ATTRIBUTES, say: the rest is used.
		lg.Warn().Err(err).Msg("part of the spans' resource could not be read")
	}
	exp := &countingExporter{SpanExporter: client, m: m, pending: new(atomic.Int64),
		log: lg.Sample(&zerolog.BurstSampler{Burst: 3, Period: time.Minute}), endpoint: endpoint}
	// The SDK's batch processor drops rather than blocks when its queue is
	// full, but keeps the count to itself; the gate in front of it admits
	// at most QueueSize spans that are not yet exported, so that the
	// processor's queue never fills and every drop is counted here.
	bsp := sdktrace.NewBatchSpanProcessor(exp,
		sdktrace.WithMaxQueueSize(cfg.QueueSize),
		sdktrace.WithMaxExportBatchSize(batch),
		sdktrace.WithBatchTimeout(cfg.BatchTimeout),
		sdktrace.WithExportTimeout(DefaultExportTimeout),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(newTrustSampler(cfg.Sampling)),
		sdktrace.WithSpanProcessor(&gate{SpanProcessor: bsp, pending: exp.pending, max: int64(cfg.QueueSize), m: m}),
		sdktrace.WithResource(res),
	)
	lg.Info().Str(logEndpoint, endpoint).Float64(logSampling, cfg.Sampling).Msg("exporting spans over OTLP/HTTP")
	return &Exporter{tp: tp, tracer: tp.Tracer("github.com/gitgate/gitgate/gateway")}, nil
}

// Tracer returns the tracer of the gateway's server spans.
func (e *Exporter) Tracer() trace.Tracer { return e.tracer }

// Shutdown exports the spans still queued, within ctx, and stops the
// processor's goroutine and the exporter.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if err := e.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing spans: %w", err)
	}
	return nil
}

// gate admits an ended, sampled span to the batch processor while fewer
// than max spans wait for export, and counts the others as dropped.
type gate struct {
	sdktrace.SpanProcessor
	pending *atomic.Int64 // admitted, not yet exported; decremented by countingExporter
	max     int64
	m       *metrics
}

// OnEnd hands s on, or drops it when the queue is full.
func (g *gate) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if g.pending.Add(1) > g.max {
		g.pending.Add(-1)
		g.m.dropped.Inc()
		return
	}
	g.SpanProcessor.OnEnd(s)
}

// countingExporter counts exported and failed spans and logs failures
// itself, so that the SDK's global error handler stays out of it.
type countingExporter struct {
	sdktrace.SpanExporter
	m        *metrics
	pending  *atomic.Int64
	log      zerolog.Logger
	endpoint string
}

// ExportSpans sends spans and counts them.
func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	c.pending.Add(-int64(len(spans)))
	if err != nil {
		c.m.failed.Add(float64(len(spans)))
		c.log.Warn().Err(err).Str(logEndpoint, c.endpoint).Int(logSpans, len(spans)).Msg("exporting spans failed; they are lost")
		return nil
	}
	c.m.exported.Add(float64(len(spans)))
	return nil
}

// metrics are the export's counters.
type metrics struct {
	exported, dropped, failed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	spans := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitgate_gateway_trace_spans_total",
		Help: "Spans of sampled requests by outcome: exported; dropped (the export queue was full); failed (the OTLP endpoint refused or could not be reached).",
	}, []string{"outcome"})
	if reg != nil {
		if err := reg.Register(spans); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering span metrics: %w", err)
			}
			spans = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return &metrics{
		exported: spans.WithLabelValues("exported"),
		dropped:  spans.WithLabelValues("dropped"),
		failed:   spans.WithLabelValues("failed"),
	}, nil
}
