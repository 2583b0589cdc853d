package proxy

import (
	"net/http"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/clientip"
	"github.com/gitgate/gitgate/gateway/internal/reply"
)

// None is the route, upstream and policy label and log value of a request
// that no route, upstream or policy answered: an unrouted request has
// route "none"; a request refused by a policy has upstream "none"; a
// request that got past its policies has policy "none". Label values stay
// bounded by the config: a path never becomes a label.
const None = "none"

// Observation is the gateway's state of one request: who its client is
// (decided once, see clientip), the exchange the Route shares with the
// ReverseProxy hooks, and, when metrics or the access log are on, its access
// log line and request metric. The outermost handler that sees a request
// starts it (Options.Observe) and serves the request with it as the
// ResponseWriter; the handlers inside read the client from it (Client) and
// say who answered (SetRoute, SetPolicy, and the Route its upstream and,
// when the gateway answers for a failed upstream, the cause). End records
// it once, on every exit path: call it deferred, so that a panic such as
// http.ErrAbortHandler is recorded too. All methods accept a nil
// Observation and do nothing then. One allocation holds all of it (with
// span export on, the span state is one more: see startSpan).
type Observation struct {
	recorder
	opts *Options
	on   bool // metrics or the access log are on: End records
	grpc bool // the request is a gRPC call (reply.IsGRPC)
	// credentialed: an identity policy of the route authenticated the
	// request (MarkCredentialed).
	credentialed bool
	req          *http.Request
	start        time.Duration // clock() when the request started
	route        string
	version      string
	policy       string
	client       clientip.Client
	corr         correlation // X-Request-Id and trace context
	// Set by the Route that serves the request.
	upstream string
	target   string
	cause    string
	bm       *backendMetrics // counters of the route's backend, policy "none"
	state    requestState    // the Route's exchange and context
	// recyclable: the Route that served the request found nothing that
	// may still refer to the Observation (see Release).
	recyclable bool
}

// observations recycles the Observations that Release finds recyclable.
var observations = sync.Pool{New: func() any { return new(Observation) }}

// Observe starts the observation of r answered on w, deciding its client.
// Call Release when the request is over.
func (o *Options) Observe(w http.ResponseWriter, r *http.Request) *Observation {
	ob := observations.Get().(*Observation)
	withCtx := ob.state.withCtx // carries &ob.state.ctx: still good
	*ob = Observation{}
	ob.state.withCtx = withCtx
	ob.init(o, w, r, clock())
	return ob
}

// Release ends ob's life: after End, once the handler has returned, and
// not deferred (a request that panicked keeps its Observation to the
// garbage collector). ob is recycled only when the Route that served it
// marked it recyclable: every attempt went the direct path to the
// synchronous transport, no per-try timer ran, the route timer was stopped
// before it fired, no span was started, and its context was let go by its
// parent and registered with nothing (exchangeCtx.quiet). Anything else
// (an unrouted or refused request, ReverseProxy, whose flush timer may
// still write to it, gRPC, a stream, a client that left) leaves it to the
// garbage collector. Recycling saves a 700-byte allocation per request
// (about 3.7% of the gateway's CPU per request).
func (ob *Observation) Release() {
	if ob != nil && ob.recyclable {
		observations.Put(ob)
	}
}

func (o *Options) observing() bool { return o.Metrics != nil || o.AccessLog }

func (ob *Observation) init(o *Options, w http.ResponseWriter, r *http.Request, start time.Duration) {
	ob.recorder = recorder{ResponseWriter: w, status: http.StatusOK}
	ob.opts, ob.on, ob.req, ob.start = o, o.observing(), r, start
	ob.route, ob.upstream, ob.policy = None, None, None
	ob.client = clientip.Of(r, o.TrustedProxies)
	ob.grpc = reply.IsGRPC(r)
	ob.corr.decide(r, ob.client.Trusted)
	if o.Tracer != nil {
		ob.startSpan(o.Tracer, r)
	}
	w.Header()["X-Request-Id"] = ob.corr.id.header() // on every answer, the gateway's own too
}

// WriteHeader sets the request's X-Request-Id on a final answer (again:
// ReverseProxy clears the headers after a 1xx, and an upstream's own value
// must not reach the client) and records the status.
func (ob *Observation) WriteHeader(code int) {
	if !ob.wroteHeader && code >= 200 {
		ob.recorder.ResponseWriter.Header()["X-Request-Id"] = ob.corr.id.header()
	}
	ob.recorder.WriteHeader(code)
}

// Write writes the body, setting the X-Request-Id first when no status was
// written.
func (ob *Observation) Write(b []byte) (int, error) {
	if !ob.wroteHeader {
		ob.recorder.ResponseWriter.Header()["X-Request-Id"] = ob.corr.id.header()
	}
	return ob.recorder.Write(b)
}

// GRPC reports whether the request is a gRPC call, so that the gateway's
// own answers to it take gRPC's shape (reply.GRPCWriter).
func (ob *Observation) GRPC() bool { return ob != nil && ob.grpc }

// Client returns the request's client, decided when the observation
// started; policies read it through clientip.Carrier.
func (ob *Observation) Client() *clientip.Client { return &ob.client }

// SetRoute records the route that the request matched.
func (ob *Observation) SetRoute(route string) {
	if ob != nil {
		ob.route = route
	}
}

// SetVersion records the config version that served the request.
func (ob *Observation) SetVersion(version string) {
	if ob != nil {
		ob.version = version
	}
}

// SetPolicy records the policy deciding on the request: the one that
// answered, unless a later policy or the route takes over.
func (ob *Observation) SetPolicy(policy string) {
	if ob != nil {
		ob.policy = policy
	}
}

// forwarding records that rt's backend be serves the request: the policies
// let it through.
func (ob *Observation) forwarding(rt *Route, be *backend) {
	if ob == nil {
		return
	}
	ob.route, ob.version, ob.upstream, ob.policy = rt.name, rt.version, be.name, None
	if rt.opts.Metrics != nil {
		ob.bm = rt.backendMetrics(be)
	}
}

// failed records why the gateway answered for the upstream.
func (ob *Observation) failed(target, cause string) {
	if ob != nil {
		ob.target, ob.cause = target, cause
	}
}

// End counts the request, writes its access log line and ends its span.
func (ob *Observation) End() {
	if ob == nil {
		return
	}
	if ob.corr.span != nil {
		ob.endSpan(time.Now())
	}
	if !ob.on {
		return
	}
	d := clock() - ob.start
	if m := ob.opts.Metrics; m != nil {
		class := ob.status / 100
		if class < 1 || class > 5 {
			class = 0
		}
		switch {
		case ob.bm != nil && ob.policy == None:
			ob.bm.codes[class].Inc()
			ob.bm.latency.Observe(d.Seconds())
		case ob.route == None:
			m.unrouted.codes[class].Inc()
			m.unrouted.latency.Observe(d.Seconds())
		default:
			m.requests.WithLabelValues(ob.route, ob.upstream, ob.policy, codeClasses[class]).Inc()
			m.latency.WithLabelValues(ob.route, ob.upstream).Observe(d.Seconds())
		}
	}
	if !ob.opts.AccessLog {
		return
	}
	ev := ob.opts.Logger.Info().
		Str("route", ob.route).
		Str("upstream", ob.upstream).
		Str("policy", ob.policy).
		Str("method", ob.req.Method).
		Str("path", ob.req.URL.Path).
		Int("status", ob.status).
		Int64("bytes", ob.bytes).
		Dur("duration", d).
		Str("version", ob.version).
		Str("request_id", ob.corr.id.String()).
		Int64("bytes_in", ob.req.ContentLength)
	if ob.client.Addr.IsValid() {
		ev = ev.Stringer("client", ob.client.Addr)
	} else {
		ev = ev.Str("client", ob.client.PeerHost)
	}
	if id := ob.corr.traceID(ob.req); id != "" {
		ev = ev.Str("trace_id", id)
	}
	if target := ob.targetName(); target != "" {
		ev = ev.Str("target", target)
	}
	if ob.cause != "" {
		ev = ev.Str("cause", ob.cause)
	}
	ev.Msg("request")
}

// observationOf returns the Observation that w is or wraps (a response
// filter such as compression may stand between it and the Route), nil for
// none.
func observationOf(w http.ResponseWriter) *Observation {
	for range maxUnwrap {
		if ob, ok := w.(*Observation); ok {
			return ob
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// MarkCredentialed records that an identity policy of the route
// authenticated the request by a credential it may strip before the route
// sees the request (an API key). The response cache then treats the
// request like one with Authorization (see Credentialed).
func (ob *Observation) MarkCredentialed() { ob.credentialed = true }

// Credentialed reports whether MarkCredentialed was called for the request
// w answers.
func Credentialed(w http.ResponseWriter) bool {
	ob := observationOf(w)
	return ob != nil && ob.credentialed
}

// maxUnwrap bounds the walk down wrapped ResponseWriters.
const maxUnwrap = 8

// targetName is the target that served the request or failed last, "" when
// none was picked.
func (ob *Observation) targetName() string {
	if ob.target == "" && ob.state.ex.target != nil {
		return ob.state.ex.target.String()
	}
	return ob.target
}
