package proxy

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gitgate/gitgate/gateway/internal/tracing"
)

// Attribute keys of the gateway's own span attributes, beside the HTTP
// semantic conventions.
const (
	attrRequestID = attribute.Key("gitgate.request_id")
	attrUpstream  = attribute.Key("gitgate.upstream")
	attrTarget    = attribute.Key("gitgate.target")
	attrPolicy    = attribute.Key("gitgate.policy")
	attrVersion   = attribute.Key("gitgate.config_version")
	attrRetries   = attribute.Key("gitgate.retries")
	attrCause     = attribute.Key("gitgate.cause")
)

// eventRetry is the name of the span event of each retry.
const eventRetry = "retry"

// spanState is a request's server span, allocated only when span export
// is on.
type spanState struct {
	span    trace.Span
	retries int // recorded on the span
	// tp backs parent[0], the traceparent sent upstream naming span as
	// the parent (setParent).
	tp     [55]byte
	parent [1]string
}

// startSpan starts the request's server span with tr, a child of the
// request's valid traceparent or the root of a new trace, and makes the
// traceparent sent upstream name it as the parent. Only called when span
// export is on (Options.Tracer).
func (ob *Observation) startSpan(tr trace.Tracer, r *http.Request) {
	ctx := context.Background()
	if ob.corr.traced {
		ctx = trace.ContextWithRemoteSpanContext(ctx, remoteSpanContext(r.Header))
		if !ob.client.Trusted {
			ctx = tracing.FromUntrustedPeer(ctx)
		}
	}
	_, span := tr.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(time.Now()))
	ss := &spanState{span: span}
	ss.setParent(span.SpanContext())
	ob.corr.span = ss
	if !span.IsRecording() {
		return // not sampled: propagated, not described
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, methodAttrs(r.Method)...)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs, semconv.URLScheme(scheme), semconv.URLPath(r.URL.Path), attrRequestID.String(ob.corr.id.String()),
		semconv.NetworkProtocolVersion(strconv.Itoa(r.ProtoMajor)+"."+strconv.Itoa(r.ProtoMinor)))
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, semconv.ServerAddress(r.Host))
	}
	if ob.client.Addr.IsValid() {
		attrs = append(attrs, semconv.ClientAddress(ob.client.Addr.String()))
	} else if ob.client.PeerHost != "" {
		attrs = append(attrs, semconv.ClientAddress(ob.client.PeerHost))
	}
	if ob.client.PeerHost != "" {
		attrs = append(attrs, semconv.NetworkPeerAddress(ob.client.PeerHost))
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		attrs = append(attrs, semconv.UserAgentOriginal(ua[0]))
	}
	span.SetAttributes(attrs...)
}

// knownMethods are the methods the HTTP semantic conventions name; others
// are "_OTHER", so that a client cannot grow the attribute's values.
var knownMethods = map[string]bool{
	http.MethodConnect: true, http.MethodDelete: true, http.MethodGet: true, http.MethodHead: true,
	http.MethodOptions: true, http.MethodPatch: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodTrace: true, "QUERY": true,
}

func methodAttrs(m string) []attribute.KeyValue {
	if knownMethods[m] {
		return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(m)}
	}
	return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String("_OTHER"), semconv.HTTPRequestMethodOriginal(m)}
}

// retrying records on the span, which must exist, that the attempt to
// target failed for cause and is retried.
func (ob *Observation) retrying(target, cause string) {
	ss := ob.corr.span
	ss.retries++
	if ss.span.IsRecording() {
		ss.span.AddEvent(eventRetry, trace.WithAttributes(attrTarget.String(target), attrCause.String(cause)))
	}
}

// endSpan describes how the request ended and ends its span at end.
func (ob *Observation) endSpan(end time.Time) {
	span := ob.corr.span.span
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 9)
		if ob.route != None {
			span.SetName(ob.req.Method + " " + ob.route)
			attrs = append(attrs, semconv.HTTPRoute(ob.route))
		}
		status := 0
		if ob.wroteHeader {
			status = ob.status
			attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
		}
		attrs = append(attrs, attrUpstream.String(ob.upstream), attrPolicy.String(ob.policy))
		if ob.version != "" {
			attrs = append(attrs, attrVersion.String(ob.version))
		}
		if t := ob.targetName(); t != "" {
			attrs = append(attrs, attrTarget.String(t))
		}
		if n := ob.corr.span.retries; n > 0 {
			attrs = append(attrs, attrRetries.Int(n))
		}
		if ob.cause != "" {
			attrs = append(attrs, attrCause.String(ob.cause))
		}
		switch {
		case status >= 500:
			attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, ob.cause)
		case status == 0:
			// The response was cut (the client left, the upstream broke
			// off) before its status was written.
			attrs = append(attrs, semconv.ErrorTypeOther)
			span.SetStatus(codes.Error, ob.cause)
		}
		span.SetAttributes(attrs...)
	}
	span.End(trace.WithTimestamp(end))
}

// remoteSpanContext is the span context of the request's traceparent,
// which correlation.decide found valid, with its tracestate when that
// parses.
func remoteSpanContext(h http.Header) trace.SpanContext {
	tp := h["Traceparent"][0]
	var cfg trace.SpanContextConfig
	_, _ = hex.Decode(cfg.TraceID[:], []byte(tp[3:35]))
	_, _ = hex.Decode(cfg.SpanID[:], []byte(tp[36:52]))
	var flags [1]byte
	_, _ = hex.Decode(flags[:], []byte(tp[53:55]))
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	cfg.Remote = true
	if ts := h["Tracestate"]; len(ts) == 1 {
		if st, err := trace.ParseTraceState(ts[0]); err == nil {
			cfg.TraceState = st
		}
	}
	return trace.NewSpanContext(cfg)
}

// setParent makes sc, the gateway's span, the parent named by the
// traceparent sent upstream.
func (ss *spanState) setParent(sc trace.SpanContext) {
	b := &ss.tp
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	flags := [1]byte{byte(sc.TraceFlags())}
	hex.Encode(b[53:55], flags[:])
	ss.parent[0] = unsafe.String(&b[0], len(b))
}
