package tracing

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestWireFormatIsTheCollectors: what the exporter sends decodes as the
// collector's own ExportTraceServiceRequest (the message type the
// exporter must not link), with every field of the span where OTLP puts
// it: ids, parent, remote flag, kind, status, attributes of each type,
// events, links, resource and scope.
func TestWireFormatIsTheCollectors(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		reqs []*coltracepb.ExportTraceServiceRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		reqs = append(reqs, &req)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	exp, err := New(context.Background(), Config{Endpoint: srv.URL, Sampling: 1, Version: "v1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x00, 0xf0, 2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}})
	_, s := exp.Tracer().Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "GET shop",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithLinks(trace.Link{SpanContext: link}))
	s.SetAttributes(attribute.String("s", "v"), attribute.Int("i", 42), attribute.Bool("b", true), attribute.Float64("f", 1.5),
		attribute.StringSlice("ss", []string{"x", "y"}))
	s.AddEvent("retry", trace.WithAttributes(attribute.String("gitgate.target", "http://a")))
	s.SetStatus(codes.Error, "upstream answered 503")
	s.End()
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 1 || len(reqs[0].GetResourceSpans()) != 1 || len(reqs[0].GetResourceSpans()[0].GetScopeSpans()) != 1 {
		t.Fatalf("requests %v, want one with one resource and one scope", reqs)
	}
	rs := reqs[0].GetResourceSpans()[0]
	ss := rs.GetScopeSpans()[0]
	if ss.GetScope().GetName() != "github.com/gitgate/gitgate/gateway" || len(ss.GetSpans()) != 1 {
		t.Fatalf("scope %v with %d spans", ss.GetScope(), len(ss.GetSpans()))
	}
	res := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		res[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if res["service.name"] != ServiceName || res["service.version"] != "v1" {
		t.Errorf("resource %v", res)
	}
	sp := ss.GetSpans()[0]
	sc := s.SpanContext()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"trace id", hex.EncodeToString(sp.GetTraceId()), sc.TraceID().String()},
		{"span id", hex.EncodeToString(sp.GetSpanId()), sc.SpanID().String()},
		{"parent id", hex.EncodeToString(sp.GetParentSpanId()), parent.SpanID().String()},
		{"flags: sampled, parent known remote", sp.GetFlags(), uint32(0x301)},
		{"name", sp.GetName(), "GET shop"},
		{"kind", sp.GetKind(), tracepb.Span_SPAN_KIND_SERVER},
		{"status code", sp.GetStatus().GetCode(), tracepb.Status_STATUS_CODE_ERROR},
		{"status message", sp.GetStatus().GetMessage(), "upstream answered 503"},
		{"start before end", sp.GetStartTimeUnixNano() > 0 && sp.GetStartTimeUnixNano() <= sp.GetEndTimeUnixNano(), true},
		{"event", len(sp.GetEvents()) == 1 && sp.GetEvents()[0].GetName() == "retry" &&
			sp.GetEvents()[0].GetAttributes()[0].GetValue().GetStringValue() == "http://a", true},
		{"link", len(sp.GetLinks()) == 1 && hex.EncodeToString(sp.GetLinks()[0].GetSpanId()) == link.SpanID().String(), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	attrs := map[string]*commonpb.AnyValue{}
	for _, kv := range sp.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue()
	}
	for _, c := range []struct {
		key  string
		want *commonpb.AnyValue
	}{
		{"s", &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "v"}}},
		{"i", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
		{"b", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
		{"f", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
		{"ss", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
			{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}, {Value: &commonpb.AnyValue_StringValue{StringValue: "y"}},
		}}}}},
	} {
		if !proto.Equal(attrs[c.key], c.want) {
			t.Errorf("attribute %s = %v, want %v", c.key, attrs[c.key], c.want)
		}
	}
}

// TestRefusedExportCounted: a batch the endpoint refuses is lost and
// counted as failed, not retried for ever.
func TestRefusedExportCounted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	exp, err := New(context.Background(), Config{Endpoint: srv.URL, Sampling: 1, Registry: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(exp.Tracer(), 3)
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, exported := spanCount(t, reg, "failed"), spanCount(t, reg, "exported"); got != 3 || exported != 0 {
		t.Errorf("failed %v, exported %v; want 3 and 0", got, exported)
	}
}
