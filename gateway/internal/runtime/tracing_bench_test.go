package runtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/tracing"
	"github.com/gitgate/gitgate/gateway/internal/tracing/otlptest"
)

// BenchmarkServeCorrelation is BenchmarkServe's bare route (one route, a
// real upstream on loopback) with the request correlation variants in one
// run: "no-headers" (an X-Request-Id generated, nothing else), "traceparent"
// (a valid traceparent and tracestate checked and passed on), "trusted-id"
// (a trusted proxy's X-Request-Id kept), and span export on with sampling
// 0 and 1 (spans to a real OTLP/HTTP receiver); "control-two-headers" sends
// two headers the gateway ignores. Export off is the default:
// no tracer exists, so the first three are what every gateway pays.
func BenchmarkServeCorrelation(b *testing.B) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name     string
		hdr      http.Header
		trusted  bool
		export   bool
		sampling float64
	}{
		{name: "no-headers"},
		{name: "traceparent", hdr: http.Header{"Traceparent": {tp}, "Tracestate": {"vendor=x"}}},
		// Two headers of no meaning to the gateway, of the traceparent's
		// sizes: the cost of the request's bigger header map alone.
		{name: "control-two-headers", hdr: http.Header{"X-Other-Header": {tp}, "X-Other-State": {"vendor=x"}}},
		{name: "trusted-id", trusted: true, hdr: http.Header{"X-Request-Id": {"lb-1234"}}},
		{name: "export/sampling=0", export: true, sampling: 0},
		{name: "export/sampling=1", export: true, sampling: 1, hdr: http.Header{"Traceparent": {tp}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{}
			if c.trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			}
			if c.export {
				rc := otlptest.Start(b)
				exp, err := tracing.New(context.Background(), tracing.Config{Endpoint: rc.URL, Sampling: c.sampling, Logger: zerolog.Nop()})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
				opts.Tracer = exp.Tracer()
			}
			e := New(opts)
			defer e.Close()
			mustApply(b, e, manyRoutes(1, rawUpstream(b)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/bench/x", nil)
				req.RemoteAddr = "192.0.2.1:4711"
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					clear(req.Header)
					for k, v := range c.hdr {
						req.Header[k] = v
					}
					e.ServeHTTP(w, req)
				}
			})
			reportCPU(b, cpu)
		})
	}
}
