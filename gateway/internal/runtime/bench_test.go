package runtime

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// manyRoutes returns a config of n prefix routes to one upstream, the last
// one at /bench.
func manyRoutes(n int, target string) schemas.Config {
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(target)}, Routes: make(map[string]schemas.Route, n)}
	for i := range n - 1 {
		cfg.Routes[fmt.Sprintf("r%d", i)] = route(fmt.Sprintf("/svc%d/items", i), to("a", 100))
	}
	cfg.Routes["bench"] = route("/bench", to("a", 100))
	return cfg
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchServe(b *testing.B, n int, edit func(*schemas.Route)) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	e := New(Options{})
	defer e.Close()
	cfg := manyRoutes(n, up.URL)
	if edit != nil {
		r := cfg.Routes["bench"]
		edit(&r)
		cfg.Routes["bench"] = r
	}
	mustApply(b, e, cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/bench/x", nil)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			e.ServeHTTP(w, req)
		}
	})
}

func BenchmarkServe1Route(b *testing.B)    { benchServe(b, 1, nil) }
func BenchmarkServe10kRoutes(b *testing.B) { benchServe(b, 10000, nil) }
func BenchmarkServeWithRetries(b *testing.B) {
	benchServe(b, 1, func(r *schemas.Route) {
		r.Retries = &schemas.Retries{}
		r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Env": "prod"}}
	})
}

func BenchmarkApply10kRoutes(b *testing.B) {
	cfg := manyRoutes(10000, "http://127.0.0.1:1")
	bundles := make([]*schemas.Bundle, 2)
	for i := range bundles {
		c := cfg
		c.Routes = make(map[string]schemas.Route, len(cfg.Routes))
		for k, v := range cfg.Routes {
			c.Routes[k] = v
		}
		c.Routes["extra"] = route(fmt.Sprintf("/extra%d", i), to("a", 100))
		bundles[i] = bundleOf(b, c)
	}
	e := New(Options{})
	defer e.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := e.Apply(bundles[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
