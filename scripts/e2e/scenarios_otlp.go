package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "ot-span-export",
		criterion: "the real gateway run with --otlp-endpoint (an OTLP/HTTP protobuf receiver run by the driver) and " +
			"--access-log serves a request carrying a sampled traceparent: on SIGTERM the receiver has one server " +
			"span of that trace id whose parent is the caller's span and whose http.route is the route; the " +
			"upstream received a traceparent naming that span as parent; the access log line has the same " +
			"trace_id and the request id the client got",
		run: otlpSpanExport,
	})
}

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes the protobuf
// export requests an OpenTelemetry Collector's otlp receiver takes.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (rc *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
		return
	}
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			rc.spans = append(rc.spans, ss.GetSpans()...)
		}
	}
	rc.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (rc *otlpReceiver) received() []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*tracepb.Span(nil), rc.spans...)
}

func otlpSpanExport(ctx context.Context, t *T) error {
	const (
		trace  = "4bf92f3577b34da6a3ce929d0e0e4736"
		caller = "00f067aa0ba902b7"
	)
	rc := &otlpReceiver{}
	recv := httptest.NewServer(rc)
	t.Cleanup(recv.Close)
	// The upstream answers with the traceparent it received.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("Traceparent"))
	}))
	t.Cleanup(up.Close)

	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	if err := st.Gateway.Stop(); err != nil {
		return fmt.Errorf("stopping the first gateway: %w", err)
	}
	// The driver stands for the load balancer in front: a trusted proxy,
	// whose sampled flag is taken (a client's is not).
	args := append(st.GatewayArgs(), "--otlp-endpoint", recv.URL, "--trace-sampling", "0", "--access-log", "--trusted-proxies", "127.0.0.0/8,::1/128")
	p, err := harness.Start(st.Dir, "gateway-otlp", append([]string{st.Bins.Gateway}, args...)...)
	if err != nil {
		return err
	}
	st.Gateway = p
	sha, err := st.Repo.WriteCommit("config.yaml", harness.ConfigYAML(up.URL, "c2", nil), "c2: the traceparent-echoing upstream")
	if err != nil {
		return err
	}
	if err := harness.WaitFor(ctx, 15*time.Second, "the restarted gateway's admin socket", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", p.Err(), p.Log)
		}
		_, err := st.Admin.Status(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, sha, "c2"); err != nil {
		return err
	}

	// Sampling 0: the probes of waitServed started unsampled traces, none
	// exported; the caller's sampled flag decides for its own trace.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+st.GatewayAddr+"/orders", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Traceparent", "00-"+trace+"-"+caller+"-01")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the traced request: %w", err)
	}
	seenTP, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	reqID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusOK || reqID == "" {
		return fmt.Errorf("the traced request: %d with X-Request-Id %q, want 200 with one", resp.StatusCode, reqID)
	}

	// SIGTERM flushes the queued span (the batch timeout is 5s).
	if err := p.Stop(); err != nil {
		return fmt.Errorf("gateway exit after SIGTERM: %w (see %s)", err, p.Log)
	}
	spans := rc.received()
	if len(spans) != 1 {
		return fmt.Errorf("%d spans received, want the traced request's only (sampling 0 exports no new trace)", len(spans))
	}
	s := spans[0]
	spanID := hex.EncodeToString(s.GetSpanId())
	route := ""
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == "http.route" {
			route = kv.GetValue().GetStringValue()
		}
	}
	switch {
	case hex.EncodeToString(s.GetTraceId()) != trace:
		return fmt.Errorf("span trace id %x, want %s", s.GetTraceId(), trace)
	case hex.EncodeToString(s.GetParentSpanId()) != caller:
		return fmt.Errorf("span parent %x, want the caller's span %s", s.GetParentSpanId(), caller)
	case s.GetKind() != tracepb.Span_SPAN_KIND_SERVER || route != "main":
		return fmt.Errorf("span of kind %v and http.route %q, want a server span of route main", s.GetKind(), route)
	}
	if want := "00-" + trace + "-" + spanID + "-01"; string(seenTP) != want {
		return fmt.Errorf("upstream received traceparent %q, want %q (the gateway's span as parent)", seenTP, want)
	}
	line, err := accessLogLine(p.Log, "/orders")
	if err != nil {
		return err
	}
	if line["trace_id"] != trace || line["request_id"] != reqID {
		return fmt.Errorf("access log line %v: want trace_id %s and request_id %s", line, trace, reqID)
	}
	t.Logf("span %s of trace %s (parent %s) exported on SIGTERM; upstream and access log agree", spanID, trace, caller)
	return nil
}

// accessLogLine is the access log line of path in the gateway log file.
func accessLogLine(file, path string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway log: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if !bytes.Contains(l, []byte(`"message":"request"`)) || !strings.Contains(string(l), `"path":"`+path+`"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			return nil, fmt.Errorf("access log line %q: %w", l, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("no access log line for %s in %s", path, file)
}
