package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/gateway/internal/traffic"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Route is the compiled forwarding handler of one route. It is immutable
// apart from its counters and safe for concurrent use.
type Route struct {
	name        string
	backends    []*backend
	split       *schemas.HashOn
	timeout     time.Duration
	perTry      time.Duration
	maxBody     int64
	path        *pathRewrite
	host        string
	reqHeaders  *headerOps
	respHeaders *headerOps
	retry       *schemas.Retries
	retryOn     retryKinds
	budget      budget
	active      atomic.Int64
	opts        *Options
	version     string // config version, for the access log
	maxRetry    int64
	metrics     atomic.Pointer[routeMetrics]
	failLog     zerolog.Logger // upstream failures, rate-bounded
	traffic     *traffic.Route
	local       local // a redirect or direct response instead of backends
}

// SetConfigVersion records the version of the config the route belongs to,
// written to each access log line. Call it before the route serves.
func (rt *Route) SetConfigVersion(v string) { rt.version = v }

// failLogBurst is how many upstream failures per second and route are
// logged when the access log is off.
const failLogBurst = 5

type retryKinds struct{ connect, reset, s502, s503, s504 bool }

// NewRoute compiles route name from spec (defaults applied). forwarders
// holds the snapshot's upstreams by name. Problems are returned as a
// *schemas.InvalidError with paths under "routes.<name>".
func NewRoute(name string, spec schemas.Route, forwarders map[string]*Forwarder, opts *Options) (*Route, error) {
	var diags []schemas.Diagnostic
	diag := func(path, format string, args ...any) {
		diags = append(diags, schemas.Diagnostic{Path: "routes." + name + path, Message: fmt.Sprintf(format, args...)})
	}
	rt := &Route{
		name:    name,
		timeout: spec.Timeout.D(),
		perTry:  spec.PerTryTimeout.D(),
		maxBody: spec.MaxBodyBytes,
		opts:    opts,
		retry:   spec.Retries,
		failLog: opts.Logger.Sample(&zerolog.BurstSampler{Burst: failLogBurst, Period: time.Second}),
	}
	for _, v := range rules.Route(spec) {
		diags = append(diags, v.At("routes."+name))
	}
	// rules.Route requires exactly one of backends, redirect and
	// directResponse. A route that answers by itself has one backend
	// without a forwarder, so that it is counted, logged and measured like
	// any other.
	localName := ""
	switch {
	case spec.Redirect != nil:
		rt.local, localName = newRedirect(spec.Redirect, spec.Match), UpstreamRedirect
	case spec.DirectResponse != nil:
		rt.local, localName = newDirect(spec.DirectResponse), UpstreamDirect
	}
	if rt.local != nil {
		spec.Backends = []schemas.Backend{{Upstream: localName, Weight: 100}}
	}
	sum := 0
	for i, b := range spec.Backends {
		fw, ok := forwarders[b.Upstream]
		if !ok && rt.local == nil {
			diag(fmt.Sprintf(".backends[%d].upstream", i), "%s", rules.Unknown("upstream", "upstreams", b.Upstream, slices.Sorted(maps.Keys(forwarders))))
		}
		sum += b.Weight
		be := &backend{name: b.Upstream, fw: fw, upTo: sum}
		if fw != nil {
			if fw.pool != nil {
				be.hashOn = fw.pool.HashOn()
			}
			be.noHost, be.breaker, be.failed = fw.noHost, fw.breakerOpen, fw.failed
		}
		rt.backends = append(rt.backends, be)
	}
	upstreams := make([]string, len(spec.Backends))
	for i, b := range spec.Backends {
		upstreams[i] = b.Upstream
	}
	rt.traffic = traffic.NewRoute(name, upstreams)
	for i, be := range rt.backends {
		be.traffic = rt.traffic.Backend(i)
	}
	if spec.Split != nil {
		rt.split = &spec.Split.HashOn
	}
	if rt.timeout <= 0 {
		diag(".timeout", "timeout must be positive")
	}
	if rt.maxBody <= 0 {
		diag(".maxBodyBytes", "maxBodyBytes must be positive")
	}
	rt.path = compileRewrite(spec.Rewrite, diag)
	if spec.Rewrite != nil {
		rt.host = spec.Rewrite.Host
		if rt.host != "" {
			if _, _, err := net.SplitHostPort(rt.host); err != nil && (len(rt.host) == 0 || !validHost(rt.host)) {
				diag(".rewrite.host", "host %q is not a valid host[:port]", rt.host)
			}
		}
	}
	rt.reqHeaders = compileHeaderOps(spec.RequestHeaders, ".requestHeaders", diag)
	rt.respHeaders = compileHeaderOps(spec.ResponseHeaders, ".responseHeaders", diag)
	if r := spec.Retries; r != nil {
		for i, on := range r.On {
			switch on {
			case schemas.RetryConnectFailure:
				rt.retryOn.connect = true
			case schemas.RetryReset:
				rt.retryOn.reset = true
			case schemas.Retry502:
				rt.retryOn.s502 = true
			case schemas.Retry503:
				rt.retryOn.s503 = true
			case schemas.Retry504:
				rt.retryOn.s504 = true
			default:
				diag(fmt.Sprintf(".retries.on[%d]", i), "unknown retry condition %q: use connect-failure, reset, 502, 503 or 504", on)
			}
		}
		if r.Attempts < 0 || r.BudgetPercent < 0 || r.BudgetPercent > 100 || r.MinRetriesPerSecond < 0 || r.BackoffBase < 0 || r.BackoffMax < r.BackoffBase {
			diag(".retries", "attempts and budget must be non-negative, budgetPercent at most 100, backoffBase <= backoffMax")
		}
		now := opts.Now
		if now == nil {
			now = time.Now
		}
		rt.budget = budget{percent: int64(r.BudgetPercent), perSecond: int64(r.MinRetriesPerSecond), now: now}
	}
	rt.maxRetry = opts.MaxRetryBody
	if rt.maxRetry <= 0 {
		rt.maxRetry = DefaultMaxRetryBody
	}
	if len(diags) > 0 {
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}
	return rt, nil
}

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Traffic returns the route's traffic counters.
func (rt *Route) Traffic() *traffic.Route { return rt.traffic }

// Name returns the route's name.
func (rt *Route) Name() string { return rt.name }

func (rt *Route) retryOnStatus(code int) bool {
	switch code {
	case http.StatusBadGateway:
		return rt.retryOn.s502
	case http.StatusServiceUnavailable:
		return rt.retryOn.s503
	case http.StatusGatewayTimeout:
		return rt.retryOn.s504
	}
	return false
}

type paramsKey struct{}

// WithParams returns r carrying the template parameters of its route
// match, for path rewrites. Nothing is allocated for an empty map.
func WithParams(r *http.Request, params map[string]string) *http.Request {
	if len(params) == 0 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), paramsKey{}, params))
}

// epoch anchors clock.
var epoch = time.Now()

// clock reads the monotonic clock alone, as a time since epoch: latencies
// and the route deadline are durations, and time.Now reads the wall clock
// too (a span's timestamps, which need it, read it themselves).
func clock() time.Duration { return time.Since(epoch) }

// Cancellation causes that tell a timeout apart from a client that left.
var (
	errRouteTimeout = errors.New("route timeout")
	errTryTimeout   = errors.New("per-try timeout")
)

// ServeHTTP forwards r to a backend of the route.
func (rt *Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := clock()
	rt.active.Add(1)
	defer rt.active.Add(-1)

	ob := observationOf(w)
	if ob == nil {
		// No outer handler started the request (the route is served on
		// its own): the route does.
		ob = &Observation{}
		ob.init(rt.opts, w, r, start)
		defer ob.End()
		w = ob
	}
	// The observation's allocation holds the request's exchange and its
	// context too.
	st := &ob.state
	// Registered first, so it runs last: after the context's cancel and
	// the route timer's release, whose outcomes it reads.
	served := false // the upstream's answer went to the client
	defer func() { ob.recyclable = served && st.quiet() && ob.corr.span == nil }()
	be := rt.pickBackend(r, ob.client.Addr)
	defer countDone(be, ob, start) // deferred: an aborted response is counted too
	ob.forwarding(rt, be)
	if g := rt.inFlightGauge(); g != nil {
		g.Inc()
		defer g.Dec()
	}

	if rt.local != nil {
		rt.local.serve(w, r, rt.respHeaders)
		return
	}

	if r.ContentLength > rt.maxBody {
		reply.Write(w, http.StatusRequestEntityTooLarge, bodyTooBig)
		return
	}
	var lb *limitedBody
	if r.Body != nil && r.Body != http.NoBody {
		lb = &limitedBody{rc: r.Body, left: rt.maxBody}
		r.Body = lb
	}

	ex := &st.ex
	ex.route, ex.backend, ex.client, ex.corr, ex.w = rt, be, &ob.client, &ob.corr, w
	if rt.path != nil {
		if p, ok := r.Context().Value(paramsKey{}).(map[string]string); ok && rt.path.hasTmpl {
			ex.params = p
		}
		p, ok := rt.path.apply(r.URL.Path, ex.params)
		if !ok {
			reply.Write(w, http.StatusBadRequest, bodyBadRewrite)
			return
		}
		ex.path = p
	}
	st.ctx.init(r.Context(), ex)
	defer st.cancel(nil)
	var ctx context.Context = &st.ctx
	timeout := rt.timeout
	if ob.grpc {
		if d, ok := grpcTimeout(r.Header); ok && d < timeout {
			timeout = d // the caller's deadline, capped by the route's
		} else {
			// The upstream learns the deadline the gateway holds it to.
			r.Header["Grpc-Timeout"] = []string{formatGRPCTimeout(timeout)}
		}
	}
	total := armRouteTimer(st, ob.start, timeout)
	defer func() { st.timerStopped = total.release() }()
	ex.allTimer = total
	ex.deadline = ob.start + timeout

	// Decide whether a retry is possible and make the body replayable.
	attempts := 0
	var replay []byte
	// A gRPC call's body is a stream (of a bidirectional call, perhaps):
	// it is never buffered to be replayed, so the call is never retried.
	if rt.retry != nil && rt.retry.Attempts > 0 && (idempotent(r.Method) || rt.retry.NonIdempotent) && !ob.grpc {
		attempts = rt.retry.Attempts
		if lb != nil {
			buf, err := readUpTo(lb, rt.maxRetry)
			switch {
			case lb.exceeded.Load():
				reply.Write(w, http.StatusRequestEntityTooLarge, bodyTooBig)
				return
			case err == nil:
				replay = buf // whole body read: replayable
			case errors.Is(err, errBodyNotFit):
				attempts = 0 // too large to keep: stream it, no retry
				r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), lb), lb}
			default:
				reply.Write(w, http.StatusBadRequest, reply.New("bad_body", "reading request body: "+err.Error(), ""))
				return
			}
		}
	}
	if replay != nil {
		r.ContentLength = int64(len(replay))
	}

	var key uint64
	if be.hashOn != nil {
		key = upstream.Key(r, be.hashOn, ob.client.Addr)
	}
	var pool *upstream.Pool // of the attempt in progress
	group := 0              // of a failover upstream: the attempt's group
	var avoid *upstream.Target
	retryHeld := false
	// open is the target of the attempt in progress until its Done.
	// ReverseProxy panics with http.ErrAbortHandler when copying the
	// response body fails (the client left, or the upstream broke off
	// mid-body); this deferred call then hands the attempt back to the
	// pool, the breaker and the retry budget, and the panic goes on to
	// net/http, which aborts the client's connection.
	var open *upstream.Target
	var tryCancel context.CancelCauseFunc
	defer func() {
		if open == nil {
			return
		}
		if ex.tryTimer != nil {
			ex.tryTimer.Stop()
		}
		if tryCancel != nil {
			tryCancel(nil)
		}
		ex.kind = abortKind(ctx, r)
		countFailure(be, ex.kind)
		pool.Done(open, ex.kind.outcome())
		if retryHeld {
			rt.budget.release()
		}
	}()
	for try := 0; ; try++ {
		fw, t, err := be.pick(r, ob.client.Addr, key, avoid, &group, try > 0)
		if err != nil {
			if retryHeld {
				rt.budget.release()
			}
			if try > 0 {
				rt.failed(ob, be, ex, writeFailure(w, ex))
				return
			}
			body, cause := be.noHost, traffic.NoHealthyTarget
			if errors.Is(err, upstream.ErrBreakerOpen) {
				body, cause = be.breaker, traffic.BreakerOpen
			}
			be.traffic.Fail(cause)
			reply.Write(w, http.StatusServiceUnavailable, body)
			rt.logFailure(ob, be, "", http.StatusServiceUnavailable, err.Error())
			return
		}
		pool = fw.pool
		ex.target, ex.err, ex.status, ex.retried = t, nil, 0, false
		ex.canRetry = try < attempts
		actx := ctx
		tryCancel = nil
		open = t
		if rt.perTry > 0 {
			ex.indirect = true // the per-try context and timer may outlive the request
			// The timer's func captures its own variable: one captured
			// from outside the loop would be moved to the heap for every
			// request.
			var cancelTry context.CancelCauseFunc
			actx, cancelTry = context.WithCancelCause(ctx)
			tryCancel = cancelTry
			ex.tryTimer = time.AfterFunc(rt.perTry, func() { cancelTry(errTryTimeout) })
		}
		var out *http.Request
		if try == 0 && actx == ctx {
			out = st.attemptOf(r)
		} else {
			out = r.WithContext(actx)
		}
		if replay != nil {
			out.Body = io.NopCloser(bytes.NewReader(replay))
		}
		if !ob.grpc {
			fw.forward(w, out, ex)
		} else if serveGRPC(fw.rp, w, out, ctx) {
			return // cut by the deadline mid-response: the deferred call counts it
		}
		if ex.tryTimer != nil {
			ex.tryTimer.Stop()
			ex.tryTimer = nil
		}
		kind := classify(ex, ctx, actx, r, lb)
		ex.kind = kind
		if tryCancel != nil {
			tryCancel(nil)
		}
		open = nil
		pool.Done(t, kind.outcome())
		if retryHeld {
			rt.budget.release()
			retryHeld = false
		}
		if kind == kindOK || kind == kindStatus && !ex.retried {
			if kind == kindStatus {
				rt.failed(ob, be, ex, ex.status) // the upstream's own 502-504
			}
			served = !ex.indirect && !ob.grpc
			return // the upstream's response went to the client
		}
		if kind == kindStatus {
			retryHeld = true // granted in modifyResponse
		} else if try < attempts && rt.retryable(kind) && ctx.Err() == nil && rt.budget.acquire(rt.active.Load()) {
			retryHeld = true
		}
		if !retryHeld {
			rt.failed(ob, be, ex, writeFailure(w, ex))
			return
		}
		rt.countRetry(be)
		if ob.corr.span != nil {
			ob.retrying(t.String(), failureCause(ex))
		}
		if !sleepCtx(ctx, rt.backoff(try)) {
			rt.budget.release()
			ex.kind = stopKind(ctx)
			rt.failed(ob, be, ex, writeFailure(w, ex))
			return
		}
		avoid = t
	}
}

// attemptKind classifies how an attempt ended.
type attemptKind int

const (
	kindOK attemptKind = iota
	kindStatus
	kindConnect
	kindReset
	kindTryTimeout
	kindTimeout
	kindTooLarge
	kindClientGone
	kindBadBody // the client's request body could not be read
)

func (k attemptKind) outcome() upstream.Outcome {
	switch k {
	case kindStatus, kindConnect, kindReset, kindTryTimeout, kindTimeout:
		return upstream.Failure
	case kindTooLarge, kindClientGone, kindBadBody:
		return upstream.Ignored
	}
	return upstream.Success
}

func classify(ex *exchange, ctx, actx context.Context, r *http.Request, lb *limitedBody) attemptKind {
	if ex.err == nil {
		if ex.status >= 502 && ex.status <= 504 {
			return kindStatus // passed through, but still a failure for health
		}
		return kindOK
	}
	switch {
	case errors.Is(ex.err, errRetryStatus):
		return kindStatus
	case lb != nil && lb.exceeded.Load():
		return kindTooLarge
	case causeOf(ctx) == errRouteTimeout:
		return kindTimeout
	case causeOf(actx) == errTryTimeout:
		return kindTryTimeout
	case r.Context().Err() != nil:
		return kindClientGone
	case ex.deadline > 0 && clock() >= ex.deadline:
		return kindTimeout
	case lb != nil && lb.broken.Load():
		return kindBadBody
	}
	var op *net.OpError
	if errors.As(ex.err, &op) && op.Op == "dial" || errors.Is(ex.err, syscall.ECONNREFUSED) {
		return kindConnect
	}
	return kindReset
}

func (rt *Route) retryable(k attemptKind) bool {
	switch k {
	case kindStatus:
		return true // modifyResponse only swallows statuses listed in On
	case kindConnect:
		return rt.retryOn.connect
	case kindReset:
		return rt.retryOn.reset
	case kindTryTimeout:
		return rt.retryOn.s504
	}
	return false
}

// writeFailure answers the client for the last failed attempt, ex.kind,
// and returns the status it wrote, 0 for none. A status that was passed
// through has already been written.
func writeFailure(w http.ResponseWriter, ex *exchange) int {
	countFailure(ex.backend, ex.kind)
	status := 0
	switch ex.kind {
	case kindOK, kindClientGone:
		// Answered already, or nobody is left to answer.
	case kindStatus:
		switch {
		case ex.err == nil:
			// The upstream's own response went to the client.
		case ex.status == http.StatusServiceUnavailable:
			status = ex.status
			reply.Write(w, status, ex.backend.failed)
		case ex.status == http.StatusGatewayTimeout:
			status = ex.status
			reply.Write(w, status, bodyTimeout)
		default:
			status = http.StatusBadGateway
			reply.Write(w, status, bodyBadGW)
		}
	case kindTooLarge:
		status = http.StatusRequestEntityTooLarge
		reply.Write(w, status, bodyTooBig)
	case kindBadBody:
		status = http.StatusBadRequest
		reply.Write(w, status, bodyBadBody)
	case kindTryTimeout, kindTimeout:
		status = http.StatusGatewayTimeout
		reply.Write(w, status, bodyTimeout)
	default:
		status = http.StatusBadGateway
		reply.Write(w, status, bodyBadGW)
	}
	return status
}

// countDone counts the request that be served on ob when it ends.
func countDone(be *backend, ob *Observation, start time.Duration) {
	status := 0
	if ob.wroteHeader {
		status = ob.status
	}
	be.traffic.Done(status, clock()-start)
}

// countFailure counts an attempt that ended as k when the gateway answers
// (or cuts the response) for it.
func countFailure(be *backend, k attemptKind) {
	switch k {
	case kindConnect:
		be.traffic.Fail(traffic.ConnectFailure)
	case kindReset:
		be.traffic.Fail(traffic.Reset)
	case kindTryTimeout, kindTimeout:
		be.traffic.Fail(traffic.Timeout)
	}
}

// failed records and logs an upstream failure that the client got as
// status (written by the gateway or passed through from the upstream):
// anything from 502 up. Other statuses (413, none) are not the upstream's
// failures.
func (rt *Route) failed(ob *Observation, be *backend, ex *exchange, status int) {
	if status < http.StatusBadGateway {
		return
	}
	target := ""
	if ex.target != nil {
		target = ex.target.String()
	}
	rt.logFailure(ob, be, target, status, failureCause(ex))
}

// logFailure puts the cause of an upstream failure on the request's access
// log line, or, with the access log off, on a warning of its own (at most
// a few per second and route).
func (rt *Route) logFailure(ob *Observation, be *backend, target string, status int, cause string) {
	ob.failed(target, cause)
	if rt.opts.AccessLog {
		return
	}
	rt.failLog.Warn().
		Str("route", rt.name).
		Str("upstream", be.name).
		Str("target", target).
		Int("status", status).
		Str("cause", cause).
		Msg("upstream failed")
}

// Causes of upstream failures that carry no error of their own.
var statusCauses = map[int]string{
	http.StatusBadGateway:         "upstream answered 502",
	http.StatusServiceUnavailable: "upstream answered 503",
	http.StatusGatewayTimeout:     "upstream answered 504",
}

// failureCause says why the last attempt, ex, failed.
func failureCause(ex *exchange) string {
	switch ex.kind {
	case kindStatus:
		if c, ok := statusCauses[ex.status]; ok {
			return c
		}
		return "upstream answered " + strconv.Itoa(ex.status)
	case kindTryTimeout:
		return errTryTimeout.Error()
	case kindTimeout:
		return errRouteTimeout.Error()
	}
	if ex.err != nil {
		return ex.err.Error()
	}
	return "upstream failed"
}

// abortKind classifies an attempt whose response body copy failed after
// the status went to the client. A client that left is no failure of the
// upstream (net/http cancels the request's context when a write to the
// client fails, before ReverseProxy panics); a body the upstream broke off
// is a reset, and one cut by the route timeout a timeout.
func abortKind(ctx context.Context, r *http.Request) attemptKind {
	switch {
	case causeOf(ctx) == errRouteTimeout:
		return kindTimeout
	case r.Context().Err() != nil:
		return kindClientGone
	}
	return kindReset
}

// stopKind is the kind of a request whose context ended between attempts.
func stopKind(ctx context.Context) attemptKind {
	if causeOf(ctx) == errRouteTimeout {
		return kindTimeout
	}
	return kindClientGone
}
