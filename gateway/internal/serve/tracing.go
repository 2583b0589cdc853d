package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/gateway/internal/tracing"
)

// spanFlushTimeout bounds the export of the spans still queued on
// shutdown; an endpoint that is down does not hold the exit longer.
const spanFlushTimeout = 5 * time.Second

// spans is the span export of a running gateway; the zero value is off.
type spans struct {
	exp *tracing.Exporter
}

// startSpans starts the span export when cfg names an endpoint. Header
// references are resolved here, so that a missing secret stops the start.
func startSpans(ctx context.Context, cfg *Config, reg prometheus.Registerer, logger zerolog.Logger) (*spans, error) {
	if cfg.OTLPEndpoint == "" {
		return &spans{}, nil
	}
	headers := make(map[string]string, len(cfg.OTLPHeaders))
	for _, h := range cfg.OTLPHeaders {
		name, value, err := tracing.ParseHeader(h, secretref.Source{})
		if err != nil {
			return nil, fmt.Errorf("--otlp-header: %w", err)
		}
		headers[name] = value
	}
	exp, err := tracing.New(ctx, tracing.Config{
		Endpoint: cfg.OTLPEndpoint,
		Sampling: cfg.TraceSampling,
		Headers:  headers,
		Version:  cfg.Version,
		Registry: reg,
		Logger:   logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting span export: %w", err)
	}
	return &spans{exp: exp}, nil
}

// tracer is the tracer of the data plane's spans, nil when off.
func (s *spans) tracer() trace.Tracer {
	if s.exp == nil {
		return nil
	}
	return s.exp.Tracer()
}

// stop exports the spans still queued, for at most spanFlushTimeout, and
// stops the export's goroutine. Later calls do nothing.
func (s *spans) stop(lg zerolog.Logger) {
	if s.exp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spanFlushTimeout)
	defer cancel()
	if err := s.exp.Shutdown(ctx); err != nil {
		lg.Warn().Err(err).Msg("spans not exported on shutdown are lost")
	}
	s.exp = nil
}
