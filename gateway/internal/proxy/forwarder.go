package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/gitgate/gitgate/gateway/internal/clientip"
	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
)

// Options configure the handlers of one snapshot.
type Options struct {
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept
	// and whose X-Forwarded-For names the client (clientip.Of). Nil: none
	// is trusted.
	TrustedProxies []netip.Prefix
	// Logger receives proxy errors and, with AccessLog, one line per request.
	Logger zerolog.Logger
	// AccessLog logs every request. Default off.
	AccessLog bool
	// Metrics records Prometheus metrics. Nil: none.
	Metrics *Metrics
	// Now is the clock of the retry budget. Nil: time.Now.
	Now func() time.Time
	// MaxRetryBody is the largest request body buffered so that it can be
	// replayed on a retry. 0: 64 KiB.
	MaxRetryBody int64
	// Tracer starts one server span per request (package tracing exports
	// them) whose trace id is that of the request's valid traceparent, else
	// a new one; the traceparent sent upstream names the span as parent.
	// Nil: no spans, and no cost.
	Tracer trace.Tracer
}

// DefaultMaxRetryBody is Options.MaxRetryBody's default.
const DefaultMaxRetryBody = 64 << 10

// Forwarder forwards attempts to the targets of one upstream pool, or of
// the groups of a failover upstream.
type Forwarder struct {
	pool *upstream.Pool
	rp   *httputil.ReverseProxy
	opts *Options
	// failover, when not nil, makes this the forwarder of a failover
	// upstream, which has no pool of its own: each attempt goes through
	// the forwarder of one of its groups (see Failover).
	failover *Failover
	// Prebuilt 503 answers naming the upstream.
	noHost, breakerOpen, failed *reply.Body
	// noDirect sends every attempt through ReverseProxy, and onDirect is
	// called for each attempt on the direct path (tests compare the two).
	noDirect bool
	onDirect func()
}

// NewForwarder returns the forwarder of pool. opts must stay unchanged.
func NewForwarder(pool *upstream.Pool, opts *Options) *Forwarder {
	f := &Forwarder{pool: pool, opts: opts,
		noHost: noHealthyBody(pool.Name()), breakerOpen: breakerOpenBody(pool.Name()), failed: upstreamFailedBody(pool.Name())}
	f.rp = &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      pool.Transport(),
		ModifyResponse: f.modifyResponse,
		ErrorHandler:   f.errorHandler,
		BufferPool:     bufPool{},
		ErrorLog:       log.New(opts.Logger.With().Str("component", "proxy").Str("upstream", pool.Name()).Logger(), "", 0),
	}
	return f
}

// Pool returns the forwarder's pool; nil for a failover upstream.
func (f *Forwarder) Pool() *upstream.Pool { return f.pool }

type exchangeKey struct{}

// exchange is the state one request shares with the ReverseProxy hooks.
type exchange struct {
	route   *Route
	backend *backend
	params  map[string]string
	path    string // the rewritten path, when the route rewrites
	client  *clientip.Client
	corr    *correlation
	target  *upstream.Target
	w       http.ResponseWriter // the writer the ReverseProxy answers on

	// Per attempt, set by the hooks.
	err      error
	status   int
	canRetry bool // a retryable status may be swallowed for a retry
	retried  bool // the swallowed status was granted a retry
	kind     attemptKind
	tryTimer *time.Timer // per-try timeout of the attempt, nil when none
	allTimer *routeTimer // the route timeout
	// deadline is when the route timeout ends. A failure seen at or after
	// it is the timeout's, even before the timer's goroutine has run: a
	// gRPC upstream holding the same deadline may end the call first.
	deadline time.Duration // clock() at the route timeout's end; 0: none

	// direct is whether the attempt takes the direct path (direct.go);
	// indirect, whether any attempt of the request did not (or left its
	// outgoing request to the http.Transport, or ran a per-try timer):
	// something may then still refer to the request's state.
	direct, indirect bool

	// hdr backs the X-Forwarded-For/-Host/-Proto values and the empty
	// User-Agent of the outgoing request, so that setting them allocates
	// nothing. Each header's slice is capped at one element, so an append
	// by a header "add" copies instead of writing into a neighbour.
	hdr [4]string
}

// requestState is what the Route needs of a request beside the
// http.Request; it lives in the request's Observation, so the request
// costs one allocation for both.
type requestState struct {
	ex  exchange
	ctx exchangeCtx
	// timerStopped: the route timer was stopped before it fired.
	timerStopped bool
	// attempt is the first attempt's request (see attemptOf); withCtx is
	// a request that carries ctx, made once per requestState, from which
	// attempt takes its context: http.Request.WithContext allocates a
	// request on every call.
	attempt http.Request
	withCtx *http.Request
}

// attemptOf returns r with the request's context, as r.WithContext(&st.ctx)
// would, in st's own request instead of a new one. It serves the first
// attempt only, so that nothing of an earlier attempt can still hold the
// request it overwrites; a request that went anywhere but the direct path
// keeps st to the garbage collector (Observation.Release).
func (st *requestState) attemptOf(r *http.Request) *http.Request {
	if st.withCtx == nil || st.withCtx.Context() != &st.ctx {
		st.withCtx = (&http.Request{}).WithContext(&st.ctx)
	}
	out := &st.attempt
	*out = *st.withCtx
	copyRequestFields(out, r)
	return out
}

// copyRequestFields copies every exported field of src to dst.
// TestCopyRequestFieldsCopiesEveryField fails when http.Request gains one.
func copyRequestFields(dst, src *http.Request) {
	dst.Method, dst.URL = src.Method, src.URL
	dst.Proto, dst.ProtoMajor, dst.ProtoMinor = src.Proto, src.ProtoMajor, src.ProtoMinor
	dst.Header, dst.Body, dst.GetBody = src.Header, src.Body, src.GetBody
	dst.ContentLength, dst.TransferEncoding, dst.Close = src.ContentLength, src.TransferEncoding, src.Close
	dst.Host, dst.Form, dst.PostForm, dst.MultipartForm = src.Host, src.Form, src.PostForm, src.MultipartForm
	dst.Trailer, dst.RemoteAddr, dst.RequestURI, dst.TLS = src.Trailer, src.RemoteAddr, src.RequestURI, src.TLS
	//lint:ignore SA1019 Cancel is copied as WithContext copies it: a caller may still set it
	dst.Cancel, dst.Response, dst.Pattern = src.Cancel, src.Response, src.Pattern
}

// quiet reports that nothing may refer to the request's state any more
// (see Observation.Release): its route timer never fired and its context
// is quiet.
func (st *requestState) quiet() bool { return st.timerStopped && st.ctx.quiet() }

// cancel cancels the request's context with cause.
func (st *requestState) cancel(cause error) { st.ctx.cancel(cause) }

func exchangeOf(ctx context.Context) *exchange {
	if c, ok := ctx.(*exchangeCtx); ok {
		return c.ex // the Route's own context, without a per-try layer
	}
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeOf(pr.In.Context())
	rt := ex.route
	out := pr.Out
	if rt.path != nil {
		out.URL.Path = ex.path // rewritten and checked in ServeHTTP
		out.URL.RawPath = ""
	}
	pr.SetURL(ex.target.URL)
	out.Host = pr.In.Host
	// A request's trailer fields stop here, as Envoy (without
	// enable_trailers) and nginx stop them: they come after the header
	// that routing, policies and the scrubbing above have judged, and an
	// upstream that merged them into its header would let a client set
	// what the gateway removes (forwarding headers, the client
	// certificate's subject, credentials). ReverseProxy would announce
	// their names and send no values.
	out.Trailer = nil
	if rt.host != "" {
		out.Host = rt.host
	}
	if !ex.direct {
		scrubForwarded(out.Header, ex.client.Trusted) // direct left them out (leftOut)
	}
	setForwarded(pr, ex.client, &ex.hdr)
	ex.corr.apply(out.Header, ex.direct) // direct left out what it removes
	rt.reqHeaders.apply(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		// What ReverseProxy would set after this hook (an empty value
		// keeps the transport's default out), without its allocation.
		ex.hdr[3] = ""
		out.Header["User-Agent"] = ex.hdr[3:4:4]
	}
}

// setForwarded sets X-Forwarded-For/-Host/-Proto, keeping the client's
// values only when the peer is a trusted proxy. ReverseProxy has already
// removed the client's values from pr.Out. vals backs the values set.
func setForwarded(pr *httputil.ProxyRequest, client *clientip.Client, vals *[4]string) {
	in, out := pr.In.Header, pr.Out.Header
	trusted := client.Trusted
	peer := client.PeerHost
	xff := peer
	// The client's values are looked up only when they are kept.
	if prior := trustedValues(in, "X-Forwarded-For", trusted); len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + peer
	}
	if peer != "" {
		vals[0] = xff
		out["X-Forwarded-For"] = vals[0:1:1]
	}
	if v := trustedValues(in, "X-Forwarded-Host", trusted); len(v) > 0 {
		out["X-Forwarded-Host"] = v
	} else {
		vals[1] = pr.In.Host
		out["X-Forwarded-Host"] = vals[1:2:2]
	}
	if v := trustedValues(in, "X-Forwarded-Proto", trusted); len(v) > 0 {
		out["X-Forwarded-Proto"] = v
	} else {
		vals[2] = "http"
		if pr.In.TLS != nil {
			vals[2] = "https"
		}
		out["X-Forwarded-Proto"] = vals[2:3:3]
	}
}

// trustedValues returns the values of h's header k when trusted, nil
// without looking when not.
func trustedValues(h http.Header, k string, trusted bool) []string {
	if !trusted {
		return nil
	}
	return h[k]
}

// errRetryStatus turns a retryable response into an attempt error.
var errRetryStatus = errors.New("retryable upstream status")

// maxDrain is how much of a swallowed response body is read so that the
// connection can be reused.
const maxDrain = 4 << 10

func (f *Forwarder) modifyResponse(res *http.Response) error {
	ex := exchangeOf(res.Request.Context())
	if ex.tryTimer != nil {
		ex.tryTimer.Stop() // headers are in: the per-try timeout has done its job
	}
	ex.status = res.StatusCode
	if ex.canRetry && ex.route.retryOnStatus(res.StatusCode) && ex.route.budget.acquire(ex.route.active.Load()) {
		ex.retried = true
		_, _ = io.CopyN(io.Discard, res.Body, maxDrain)
		return errRetryStatus
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		scrubSwitching(res.Header)
	}
	if res.StatusCode == http.StatusSwitchingProtocols || isEventStream(res.Header) {
		if ex.allTimer != nil {
			ex.allTimer.lift()
		}
	}
	ex.route.respHeaders.apply(res.Header)
	if res.StatusCode != http.StatusSwitchingProtocols {
		moveHeaders(ex.w.Header(), res.Header, ex.direct)
	}
	return nil
}

// moveHeaders hands the upstream's response headers to the client's header
// map itself, as ReverseProxy's header copy would (adding to values already
// there), but sharing the value slices instead of allocating one per header.
// ReverseProxy then finds nothing left to copy, and its flush-interval
// choice finds no Content-Type to parse (mime.ParseMediaType allocates).
// An event stream's Content-Type stays behind for ReverseProxy to copy and
// see, so it is still flushed on every write; a response without
// Content-Length is flushed on every write either way. On the direct path
// (direct), which copies nothing after this and reads the Content-Type from
// src itself, every header is shared and src is left as it was: deleting
// each key was about 2% of the gateway's CPU.
func moveHeaders(dst, src http.Header, direct bool) {
	stream := !direct && isEventStream(src)
	for k, v := range src {
		if len(v) == 0 || stream && k == "Content-Type" {
			continue // nothing to add, or left for ReverseProxy
		}
		if prior := dst[k]; len(prior) > 0 {
			v = append(prior, v...)
		}
		dst[k] = v
		if !direct {
			delete(src, k)
		}
	}
}

// isEventStream reports a Content-Type that starts, spaces aside and in
// any case, with text/event-stream.
func isEventStream(h http.Header) bool {
	v := h["Content-Type"]
	return len(v) > 0 && isEventStreamValue(v[0])
}

// isEventStreamValue is isEventStream for the Content-Type value v.
func isEventStreamValue(v string) bool {
	const prefix = "text/event-stream"
	s := strings.TrimSpace(v)
	return len(s) >= len(prefix) && headers.EqualFoldASCII(s[:len(prefix)], prefix)
}

func (f *Forwarder) errorHandler(_ http.ResponseWriter, r *http.Request, err error) {
	exchangeOf(r.Context()).err = err
}

// bufPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufPool) Get() []byte  { return *(copyBufs.Get().(*[]byte)) }
func (bufPool) Put(b []byte) { copyBufs.Put(&b) }
