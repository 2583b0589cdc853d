// Package otlptest is an OTLP/HTTP trace receiver for tests: a real HTTP
// server that decodes protobuf export requests, as an OpenTelemetry
// Collector's otlp receiver does, and keeps their spans. (The e2e driver's
// receiver decodes with the collector's own message type.)
package otlptest

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, its ids in lowercase hex.
type Span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Flags                     uint32
	TraceState                string
	Attrs                     map[string]string // values as text
	Resource                  map[string]string
	Events                    []string
	Status                    tracepb.Status_StatusCode
}

// Receiver is a running receiver at URL (its path is /v1/traces).
type Receiver struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests int
	headers  http.Header // of the last request
	changed  chan struct{}
	conns    atomic.Int64  // open client connections
	hold     chan struct{} // when set, requests wait for it to close
}

// Start starts a receiver, closed when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	rc := &Receiver{changed: make(chan struct{})}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			rc.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			rc.conns.Add(-1)
		}
	}
	rc.srv.Start()
	rc.URL = rc.srv.URL + "/v1/traces"
	t.Cleanup(rc.Close)
	return rc
}

// Close stops the receiver.
func (rc *Receiver) Close() {
	rc.Release()
	rc.srv.Close()
}

// Hold makes requests wait until Release.
func (rc *Receiver) Hold() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hold == nil {
		rc.hold = make(chan struct{})
	}
}

// Release lets held and later requests through.
func (rc *Receiver) Release() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hold != nil {
		close(rc.hold)
		rc.hold = nil
	}
}

// OpenConns returns how many connections exporters hold open to the
// receiver.
func (rc *Receiver) OpenConns() int64 { return rc.conns.Load() }

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	hold := rc.hold
	rc.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	all, err := decodeRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range all {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind(),
					Flags: s.GetFlags(), TraceState: s.GetTraceState(), Attrs: attrs(s.GetAttributes()), Resource: res,
					Status: s.GetStatus().GetCode(),
				}
				for _, e := range s.GetEvents() {
					sp.Events = append(sp.Events, e.GetName())
				}
				got = append(got, sp)
			}
		}
	}
	rc.mu.Lock()
	rc.spans = append(rc.spans, got...)
	rc.requests++
	rc.headers = r.Header.Clone()
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.mu.Unlock()
	// An ExportTraceServiceResponse with no partial success: no bytes.
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// decodeRequest decodes an ExportTraceServiceRequest, whose one field (1)
// is the repeated ResourceSpans. The collector's package for that message
// also holds its gRPC service, which the gateway's packages must not link.
func decodeRequest(b []byte) ([]*tracepb.ResourceSpans, error) {
	var out []*tracepb.ResourceSpans
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("export request: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("export request field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("export request resource_spans: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var rs tracepb.ResourceSpans
		if err := proto.Unmarshal(v, &rs); err != nil {
			return nil, fmt.Errorf("export request resource_spans: %w", err)
		}
		out = append(out, &rs)
	}
	return out, nil
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		m[kv.GetKey()] = text(v)
	}
	return m
}

func text(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return v.String()
}

// Spans returns the spans received so far.
func (rc *Receiver) Spans() []Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Span(nil), rc.spans...)
}

// Requests returns how many export requests were received.
func (rc *Receiver) Requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// Header returns the headers of the last export request.
func (rc *Receiver) Header() http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.headers
}

// WaitSpans waits until n spans have arrived, or fails the test after
// timeout, and returns them.
func (rc *Receiver) WaitSpans(t testing.TB, n int, timeout time.Duration) []Span {
	t.Helper()
	deadline := time.After(timeout)
	for {
		rc.mu.Lock()
		got, ch := len(rc.spans), rc.changed
		rc.mu.Unlock()
		if got >= n {
			return rc.Spans()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d spans received in %v, want %d", got, timeout, n)
		}
	}
}
