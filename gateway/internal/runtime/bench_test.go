package runtime

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/gateway/internal/upstream/rawtest"
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

// rawUpstream is a keep-alive HTTP/1.1 server that answers every request
// (bodies are not expected) with a canned 200 "ok". It allocates nothing per
// request, so a benchmark's allocs/op are the gateway's own.
func rawUpstream(tb testing.TB) string {
	tb.Helper()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	s := rawtest.Serve(tb, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 4096)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // end of the request head
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}
	})
	return "http://" + s.Addr
}

const benchKey = "bench-secret-key"

// withChain attaches API key + rate limit + header transforms + retries to
// the bench route: the policy chain of issue 4's ≤ 25% goal.
func withChain(cfg *schemas.Config) {
	sum := sha256.Sum256([]byte(benchKey))
	cfg.Policies = map[string]schemas.Policy{
		"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"bench": "sha256:" + hex.EncodeToString(sum[:])}}},
		"rl":   {RateLimit: &schemas.RateLimit{Rate: 1e9}},
	}
	r := cfg.Routes["bench"]
	r.Policies = []string{"keys", "rl"}
	r.Retries = &schemas.Retries{}
	r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Env": "prod"}, Remove: []string{"X-Debug"}}
	r.ResponseHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Served-By": "gitgate"}}
	cfg.Routes["bench"] = r
}

type serveCase struct {
	routes  int
	metrics bool
	chain   bool
}

func benchServe(b *testing.B, c serveCase) {
	opts := Options{}
	if c.metrics {
		opts.Registry = prometheus.NewRegistry()
	}
	e := New(opts)
	defer e.Close()
	cfg := manyRoutes(c.routes, rawUpstream(b))
	if c.chain {
		withChain(&cfg)
	}
	mustApply(b, e, cfg)
	b.ReportAllocs()
	b.ResetTimer() // the apply above is not the request path
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/bench/x", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			if c.chain {
				req.Header["X-Api-Key"] = []string{benchKey}
			}
			e.ServeHTTP(w, req)
		}
	})
	reportCPU(b, cpu)
}

// reportCPU reports the process CPU time since start per iteration as
// "cpu-ns/op": on a loaded, shared machine wall time counts waiting for a
// core, CPU time does not. It includes the in-process upstream.
func reportCPU(b *testing.B, start time.Duration) {
	if used := processCPU() - start; used > 0 && start > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkServe serves one request through the whole handler (snapshot,
// route lookup, policies, proxy, transport) to a real upstream on loopback.
// routes=1 vs routes=10000 is the route-count cost; chain vs bare is the
// policy chain's (API key + rate limit + header transforms + retries).
func BenchmarkServe(b *testing.B) {
	for _, c := range []struct {
		name string
		serveCase
	}{
		{"bare/routes=1", serveCase{routes: 1}},
		{"bare/routes=10000", serveCase{routes: 10000}},
		{"bare+metrics/routes=1", serveCase{routes: 1, metrics: true}},
		{"chain/routes=1", serveCase{routes: 1, chain: true}},
		{"chain+metrics/routes=1", serveCase{routes: 1, chain: true, metrics: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchServe(b, c.serveCase) })
	}
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
	cpu := processCPU()
	for i := 0; b.Loop(); i++ {
		if err := e.Apply(bundles[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}
