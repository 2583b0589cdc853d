package serve

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/tracing/otlptest"
	"github.com/gitgate/gitgate/schemas"
)

// TestRunExportsSpansAndFlushesOnShutdown: with --otlp-endpoint, Run owns
// the span export: a request's span reaches a real OTLP/HTTP receiver at
// the latest when the gateway shuts down (the batch timeout is 5s), with
// the gateway's version in its resource, and when Run returns neither the
// export's goroutine nor a connection to the receiver is left.
func TestRunExportsSpansAndFlushesOnShutdown(t *testing.T) {
	t.Parallel()
	rc := otlptest.Start(t)
	up, seen := capturingUpstream(t)
	g := startGateway(t, "", func(c *Config) {
		c.OTLPEndpoint = strings.TrimSuffix(rc.URL, "/v1/traces") // the path is added
		c.TraceSampling = 1
		c.Version = "v1.2.3"
	})
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes:    map[string]schemas.Route{"app": {Match: schemas.Match{Path: "/app"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle("v1", schemas.Source{Commit: "v1"}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.admin.Put(context.Background(), b, ""); err != nil {
		t.Fatal(err)
	}
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, g.data+"/app/x", nil)
	req.Header.Set("Traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := g.shutdown(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	spans := rc.Spans()
	if len(spans) != 1 || spans[0].TraceID != trace || spans[0].Resource["service.version"] != "v1.2.3" {
		t.Fatalf("spans after shutdown %+v, want one of trace %s and version v1.2.3", spans, trace)
	}
	reqs := seen.take()
	if len(reqs) != 1 || reqs[0].header.Get("Traceparent") != "00-"+trace+"-"+spans[0].SpanID+"-01" {
		t.Errorf("upstream requests %+v, want one whose traceparent names span %s", reqs, spans[0].SpanID)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rc.OpenConns() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := rc.OpenConns(); n > 0 {
		t.Errorf("%d connections to the OTLP endpoint left open after Run returned", n)
	}
	if dump := goroutineDump(); strings.Contains(dump, "go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor)") {
		t.Errorf("the span processor's goroutine outlived Run:\n%s", dump)
	}
}
