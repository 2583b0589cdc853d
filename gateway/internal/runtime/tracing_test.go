package runtime

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/gitgate/gitgate/gateway/internal/tracing"
	"github.com/gitgate/gitgate/gateway/internal/tracing/otlptest"
	"github.com/gitgate/gitgate/schemas"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// tracedUpstream answers with the traceparent and tracestate it received,
// as JSON; with status 503 when the path contains "fail".
func tracedUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "fail") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string][]string{"tp": r.Header.Values("Traceparent"), "ts": r.Header.Values("Tracestate")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSpanExport: with an OTLP endpoint, each request is one server span,
// received by a real OTLP/HTTP receiver: a child of a valid incoming
// traceparent (same trace id, the caller's span as parent) or the root of
// a new trace; the traceparent sent upstream names the gateway's span as
// the parent, sampled or not; sampling is parent-based (the incoming flag
// decides, the ratio decides for new traces); the access log's trace_id is
// the span's.
func TestSpanExport(t *testing.T) {
	t.Parallel()
	const (
		inTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
		inParent = "00f067aa0ba902b7"
	)
	sampledTP := "00-" + inTrace + "-" + inParent + "-01"
	unsampledTP := "00-" + inTrace + "-" + inParent + "-00"
	for _, tc := range []struct {
		name       string
		sampling   float64
		path       string
		hdr        map[string]string
		exported   bool
		keepTrace  bool   // the span continues the incoming trace
		wantFlags  string // of the traceparent sent upstream
		wantTS     string
		wantStatus int
		wantRetry  bool
		trusted    bool // the client is a trusted proxy
	}{
		{name: "sampled parent continued", sampling: 1, path: "/shop/cart", hdr: map[string]string{"Traceparent": sampledTP, "Tracestate": "vendor=x"},
			exported: true, keepTrace: true, wantFlags: "01", wantTS: "vendor=x", wantStatus: 200},
		{name: "no traceparent: new sampled trace", sampling: 1, path: "/shop/cart", exported: true, wantFlags: "01", wantStatus: 200},
		{name: "invalid traceparent: new trace, tracestate dropped", sampling: 1, path: "/shop/cart",
			hdr:      map[string]string{"Traceparent": "00-" + strings.Repeat("0", 32) + "-" + inParent + "-01", "Tracestate": "vendor=x"},
			exported: true, wantFlags: "01", wantStatus: 200},
		{name: "sampling 0: nothing exported, still propagated", sampling: 0, path: "/shop/cart", wantFlags: "00", wantStatus: 200},
		{name: "sampling 0: a trusted proxy's sampled parent still exported", sampling: 0, path: "/shop/cart", hdr: map[string]string{"Traceparent": sampledTP},
			trusted: true, exported: true, keepTrace: true, wantFlags: "01", wantStatus: 200},
		{name: "sampling 0: a client's sampled parent is not taken at its word", sampling: 0, path: "/shop/cart", hdr: map[string]string{"Traceparent": sampledTP},
			keepTrace: true, wantFlags: "00", wantStatus: 200},
		{name: "a trusted proxy's unsampled parent: not exported, propagated unsampled", sampling: 1, path: "/shop/cart", hdr: map[string]string{"Traceparent": unsampledTP},
			trusted: true, keepTrace: true, wantFlags: "00", wantStatus: 200},
		{name: "a client's unsampled parent: sampled by the ratio", sampling: 1, path: "/shop/cart", hdr: map[string]string{"Traceparent": unsampledTP},
			exported: true, keepTrace: true, wantFlags: "01", wantStatus: 200},
		{name: "upstream 503 retried: error span with a retry event", sampling: 1, path: "/shop/fail", hdr: map[string]string{"Traceparent": sampledTP},
			exported: true, keepTrace: true, wantFlags: "01", wantStatus: 503, wantRetry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := otlptest.Start(t)
			exp, err := tracing.New(context.Background(), tracing.Config{Endpoint: rc.URL, Sampling: tc.sampling, Version: "v9.9.9", Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
			var sink lockedBuffer
			up := tracedUpstream(t)
			opts := Options{Tracer: exp.Tracer(), AccessLog: true, Logger: zerolog.New(&sink)}
			if tc.trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
			}
			e := newEngine(t, opts)
			shop := route("/shop", to("a", 100))
			shop.Retries = &schemas.Retries{Attempts: 1, On: []string{schemas.Retry503}, BudgetPercent: 100, MinRetriesPerSecond: 100,
				BackoffBase: schemas.Duration(time.Millisecond), BackoffMax: schemas.Duration(time.Millisecond)}
			mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(up.URL)}, Routes: map[string]schemas.Route{"shop": shop}})
			srv := front(t, e)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var seen map[string][]string
			err = json.NewDecoder(resp.Body).Decode(&seen)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if err := exp.Shutdown(context.Background()); err != nil { // flushes
				t.Fatal(err)
			}

			if len(seen["tp"]) != 1 {
				t.Fatalf("upstream saw traceparent %q, want one", seen["tp"])
			}
			m := traceparentRE.FindStringSubmatch(seen["tp"][0])
			if m == nil {
				t.Fatalf("upstream saw traceparent %q, not a version 00 one", seen["tp"][0])
			}
			upTrace, upParent, upFlags := m[1], m[2], m[3]
			if tc.keepTrace && upTrace != inTrace {
				t.Errorf("upstream trace id %s, want the incoming %s", upTrace, inTrace)
			}
			if !tc.keepTrace && upTrace == inTrace {
				t.Errorf("upstream trace id %s is the invalid parent's", upTrace)
			}
			if upParent == inParent {
				t.Errorf("upstream's parent id is the caller's span %s, not the gateway's", upParent)
			}
			if upFlags != tc.wantFlags {
				t.Errorf("upstream trace flags %s, want %s", upFlags, tc.wantFlags)
			}
			if got := strings.Join(seen["ts"], ","); got != tc.wantTS {
				t.Errorf("upstream tracestate %q, want %q", got, tc.wantTS)
			}
			if id := accessLogTraceID(t, &sink); id != upTrace {
				t.Errorf("access log trace_id %q, upstream's trace id %s", id, upTrace)
			}

			spans := rc.Spans()
			if !tc.exported {
				if len(spans) != 0 || rc.Requests() != 0 {
					t.Fatalf("%d spans in %d exports, want none", len(spans), rc.Requests())
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans exported, want 1: %+v", len(spans), spans)
			}
			s := spans[0]
			if s.TraceID != upTrace || s.SpanID != upParent {
				t.Errorf("span %s/%s, upstream's parent %s/%s", s.TraceID, s.SpanID, upTrace, upParent)
			}
			wantParent := ""
			if tc.keepTrace {
				wantParent = inParent
			}
			if s.ParentID != wantParent {
				t.Errorf("span parent %q, want %q", s.ParentID, wantParent)
			}
			if s.Kind != tracepb.Span_SPAN_KIND_SERVER || s.Name != "GET shop" {
				t.Errorf("span %q of kind %v, want \"GET shop\" of kind server", s.Name, s.Kind)
			}
			if s.TraceState != tc.wantTS {
				t.Errorf("span trace state %q, want %q", s.TraceState, tc.wantTS)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			want := map[string]string{
				"http.request.method": "GET", "http.route": "shop", "http.response.status_code": itoa(tc.wantStatus),
				"url.path": tc.path, "url.scheme": "http", "server.address": host[:strings.LastIndex(host, ":")],
				"server.port": host[strings.LastIndex(host, ":")+1:], "client.address": "127.0.0.1",
				"gitgate.upstream": "a", "gitgate.target": up.URL, "gitgate.policy": "none",
				"gitgate.request_id": resp.Header.Get("X-Request-Id"), "network.protocol.version": "1.1",
			}
			if tc.wantRetry {
				want["gitgate.retries"] = "1"
				want["error.type"] = "503"
			}
			for k, v := range want {
				if s.Attrs[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, s.Attrs[k], v)
				}
			}
			if tc.wantRetry != (len(s.Events) == 1 && s.Events[0] == "retry") {
				t.Errorf("events %q, want a retry: %v", s.Events, tc.wantRetry)
			}
			if wantErr := tc.wantStatus >= 500; wantErr != (s.Status == tracepb.Status_STATUS_CODE_ERROR) {
				t.Errorf("span status %v for HTTP %d", s.Status, tc.wantStatus)
			}
			if s.Resource["service.name"] != tracing.ServiceName || s.Resource["service.version"] != "v9.9.9" || s.Resource["host.name"] == "" {
				t.Errorf("resource %v lacks service.name, service.version or host.name", s.Resource)
			}
		})
	}
}

// accessLogTraceID is the trace_id of the one access log line in sink.
func accessLogTraceID(t *testing.T, sink *lockedBuffer) string {
	t.Helper()
	var ids []string
	for _, l := range sink.lines() {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		if m["message"] == "request" {
			id, _ := m["trace_id"].(string)
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d access log lines, want 1", len(ids))
	}
	return ids[0]
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
