package tracing

import (
	"context"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// untrustedKey marks a context whose remote parent came from a peer that
// is not a trusted proxy.
type untrustedKey struct{}

// FromUntrustedPeer returns ctx marked so that the gateway's sampler does
// not take the sampled flag of its remote parent (a traceparent sent by a
// client that is not a trusted proxy) at its word: the trace id is kept,
// but the trace is sampled by --trace-sampling like a new one. Otherwise
// any client could have all its requests exported, or none.
func FromUntrustedPeer(ctx context.Context) context.Context {
	return context.WithValue(ctx, untrustedKey{}, true)
}

// trustSampler is parent-based for parents from trusted proxies and new
// traces alike, and ratio-based for the parents of untrusted peers.
type trustSampler struct {
	parentBased, ratio sdktrace.Sampler
}

func newTrustSampler(ratio float64) sdktrace.Sampler {
	r := sdktrace.TraceIDRatioBased(ratio)
	return trustSampler{parentBased: sdktrace.ParentBased(r), ratio: r}
}

// ShouldSample implements sdktrace.Sampler.
func (s trustSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.ParentContext != nil && p.ParentContext.Value(untrustedKey{}) != nil {
		return s.ratio.ShouldSample(p)
	}
	return s.parentBased.ShouldSample(p)
}

// Description implements sdktrace.Sampler.
func (s trustSampler) Description() string {
	return "TrustedParentBased{" + s.parentBased.Description() + "}"
}
