package tracing

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/gateway/internal/tracing/otlptest"
)

// spanCount is gitgate_gateway_trace_spans_total{outcome} in reg.
func spanCount(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_gateway_trace_spans_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// endSpans starts and ends n server spans of new traces.
func endSpans(tr trace.Tracer, n int) {
	for range n {
		_, s := tr.Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindServer))
		s.End()
	}
}

// TestQueueFullDropsCounted: while the endpoint does not answer, spans
// beyond the queue are dropped, not waited for, and counted; the queued
// ones are exported once it answers.
func TestQueueFullDropsCounted(t *testing.T) {
	t.Parallel()
	rc := otlptest.Start(t)
	rc.Hold()
	reg := prometheus.NewRegistry()
	exp, err := New(context.Background(), Config{Endpoint: rc.URL, Sampling: 1, QueueSize: 2, Registry: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(exp.Tracer(), 10) // returns: a full queue never blocks
	if got := spanCount(t, reg, "dropped"); got != 8 {
		t.Errorf("dropped %v spans, want 8 (queue of 2)", got)
	}
	rc.Release()
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := spanCount(t, reg, "exported"); got != 2 {
		t.Errorf("exported %v spans, want 2", got)
	}
	if got := len(rc.Spans()); got != 2 {
		t.Errorf("receiver got %d spans, want 2", got)
	}
}

// TestShutdownFlushesAndLeavesNoGoroutine: Shutdown exports the spans
// still queued (the batch timeout is far away) and stops every goroutine
// the export started, its HTTP connections included.
func TestShutdownFlushesAndLeavesNoGoroutine(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	rc := otlptest.Start(t)
	base := settledGoroutines()
	exp, err := New(context.Background(), Config{Endpoint: rc.URL, Sampling: 1, BatchTimeout: time.Hour, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(exp.Tracer(), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(rc.Spans()); got != 3 {
		t.Errorf("receiver got %d spans on shutdown, want 3", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for ; n > base && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	if n > base {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Shutdown, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines is runtime.NumGoroutine once it stops falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// TestHeadersByReference: export headers come from env: or file:
// references and reach the endpoint; a literal value is refused; errors
// name the reference, never the value.
func TestHeadersByReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("Bearer from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := secretref.Source{LookupEnv: func(k string) (string, bool) {
		switch k {
		case "OTLP_TOKEN":
			return "Bearer from-env", true
		case "BAD_TOKEN":
			return "secret\nvalue", true
		}
		return "", false
	}}
	for _, tc := range []struct {
		name, flag, wantName, wantValue, wantErr string
	}{
		{name: "env", flag: "Authorization=env:OTLP_TOKEN", wantName: "Authorization", wantValue: "Bearer from-env"},
		{name: "file, trailing newline removed", flag: "Authorization=file:" + file, wantName: "Authorization", wantValue: "Bearer from-file"},
		{name: "literal refused", flag: "Authorization=Bearer abc", wantErr: "must be a reference"},
		{name: "unset env", flag: "X-Token=env:NOPE", wantErr: "env NOPE is not set"},
		{name: "missing file", flag: "X-Token=file:" + filepath.Join(dir, "nope"), wantErr: "reading file"},
		{name: "no name", flag: "=env:OTLP_TOKEN", wantErr: "is not NAME=env:VAR"},
		{name: "bad name", flag: "X Token=env:OTLP_TOKEN", wantErr: "is not NAME=env:VAR"},
		{name: "value not a header value", flag: "X-Token=env:BAD_TOKEN", wantErr: "not a valid header value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name, value, err := ParseHeader(tc.flag, src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "from-") {
					t.Errorf("error %q shows a secret value", err)
				}
				return
			}
			if err != nil || name != tc.wantName || value != tc.wantValue {
				t.Fatalf("ParseHeader = %q, %q, %v; want %q, %q", name, value, err, tc.wantName, tc.wantValue)
			}
		})
	}
	t.Run("sent with every export", func(t *testing.T) {
		t.Parallel()
		rc := otlptest.Start(t)
		exp, err := New(context.Background(), Config{Endpoint: rc.URL, Sampling: 1, Headers: map[string]string{"Authorization": "Bearer from-env"}, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		endSpans(exp.Tracer(), 1)
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := rc.Header().Get("Authorization"); got != "Bearer from-env" {
			t.Errorf("receiver got Authorization %q", got)
		}
	})
}

// TestCheckEndpoint: an http(s) URL with a host, /v1/traces added to a URL
// without a path, credentials in the URL refused.
func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want, wantErr string }{
		{name: "base URL", in: "http://collector:4318", want: "http://collector:4318/v1/traces"},
		{name: "root path", in: "https://collector:4318/", want: "https://collector:4318/v1/traces"},
		{name: "own path kept", in: "http://collector:4318/otlp/v1/traces", want: "http://collector:4318/otlp/v1/traces"},
		{name: "no scheme", in: "collector:4318", wantErr: "not an http:// or https:// URL"},
		{name: "grpc scheme", in: "grpc://collector:4317", wantErr: "not an http:// or https:// URL"},
		{name: "no host", in: "http:///v1/traces", wantErr: "not an http:// or https:// URL"},
		{name: "credentials", in: "http://user:pw@collector:4318", wantErr: "carries credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckEndpoint(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), ":pw@") {
					t.Fatalf("CheckEndpoint(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CheckEndpoint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestCheckSampling: a ratio from 0 to 1.
func TestCheckSampling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ratio float64
		ok    bool
	}{
		{"zero", 0, true}, {"half", 0.5, true}, {"one", 1, true},
		{"negative", -0.1, false}, {"above one", 1.5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckSampling(tc.ratio); (err == nil) != tc.ok {
				t.Fatalf("CheckSampling(%v) = %v, want ok %v", tc.ratio, err, tc.ok)
			}
		})
	}
}
