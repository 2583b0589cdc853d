package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// discard is a ResponseWriter that keeps nothing, so the benchmark
// measures the cache's hit path.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkHit(b *testing.B) {
	s, _ := newStore(b, 0)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello from the bench upstream\n"))
	})
	cfg := schemas.Config{Routes: map[string]schemas.Route{"r": route(schemas.RouteCache{})}}
	cfg.ApplyDefaults()
	h, ns := s.Wrap("r", cfg.Routes["r"], next)
	s.Retain([]string{ns})
	r := httptest.NewRequest("GET", "http://bench.example/items?page=2", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discard{h: http.Header{}}, r)
	}
}
