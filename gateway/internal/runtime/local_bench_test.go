package runtime

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// BenchmarkServeLocal measures, in one run, a forwarded request against
// the same route with compress configured (its 2-byte answer is below
// minBytes: the cost of the wrapper alone) and against a direct response
// and a redirect, which never reach an upstream.
func BenchmarkServeLocal(b *testing.B) {
	for _, c := range []struct {
		name string
		edit func(*schemas.Route)
	}{
		{"forward", func(*schemas.Route) {}},
		{"forward-compress-small", func(r *schemas.Route) { r.Compress = &schemas.Compress{} }},
		{"direct", func(r *schemas.Route) {
			r.Backends, r.DirectResponse = nil, &schemas.DirectResponse{Body: "ok"}
		}},
		{"redirect", func(r *schemas.Route) {
			r.Backends, r.Redirect = nil, &schemas.Redirect{Scheme: "https"}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := New(Options{})
			defer e.Close()
			cfg := manyRoutes(1, rawUpstream(b))
			r := cfg.Routes["bench"]
			c.edit(&r)
			cfg.Routes["bench"] = r
			mustApply(b, e, cfg)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/bench/x?a=1", nil)
				req.RemoteAddr = "192.0.2.1:4711"
				req.Header.Set("Accept-Encoding", "gzip, zstd")
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					e.ServeHTTP(w, req)
				}
			})
			reportCPU(b, cpu)
		})
	}
}
