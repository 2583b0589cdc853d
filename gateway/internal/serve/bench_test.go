package serve

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// manyRoutes is a bundle of n prefix routes to target.
func manyRoutes(b *testing.B, version, target string, n int) *schemas.Bundle {
	b.Helper()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{target}}},
		Routes:    make(map[string]schemas.Route, n),
	}
	for i := range n {
		cfg.Routes[fmt.Sprintf("r%05d", i)] = schemas.Route{
			Match:    schemas.Match{Path: fmt.Sprintf("/svc%d/api", i)},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}
	}
	cfg.ApplyDefaults()
	bu, err := schemas.NewBundle(version, schemas.Source{}, cfg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return bu
}

// BenchmarkPutBundle measures a push through the admin socket into the real
// engine: encode, send, strict decode, verify, compile, swap, and (with a
// state dir) the atomic last-known-good write with its two fsyncs.
func BenchmarkPutBundle(b *testing.B) {
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	for _, routes := range []int{1, 10000} {
		for _, persist := range []bool{false, true} {
			b.Run(fmt.Sprintf("routes=%d/persist=%v", routes, persist), func(b *testing.B) {
				state := ""
				if persist {
					state = b.TempDir()
				}
				g := startGateway(b, state, nil)
				bundles := [2]*schemas.Bundle{manyRoutes(b, "a", up.URL, routes), manyRoutes(b, "b", up.URL+"/", routes)}
				ctx := context.Background()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if _, err := g.admin.Put(ctx, bundles[i%2], ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
