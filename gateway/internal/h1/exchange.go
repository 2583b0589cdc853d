package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// mode is how the handler's goroutine hands the response to fasthttp's.
type mode int

const (
	modeDone   mode = iota + 1 // returned without flushing: a whole response
	modeStream                 // flushed or outgrew the buffer: a body stream
	modeHijack                 // hijacked the connection
	modeAbort                  // panicked before the header went out
)

// maxBuffered is the largest body handed to fasthttp whole; a longer one
// is streamed, with its Content-Length when the handler set one.
const maxBuffered = 64 << 10

// hijackWait bounds the wait for fasthttp to hand over a hijacked
// connection.
const hijackWait = 10 * time.Second

// errClientGone is what a write returns once fasthttp stopped taking the
// body (the client is gone).
var errClientGone = errors.New("h1: the client connection is gone")

// errNoHijack is what Hijack returns for a request without an Upgrade
// header (and not CONNECT), whose handler runs inline.
var errNoHijack = errors.New("h1: hijack of a request without Upgrade or CONNECT")

// exchange is one request's adapter state: the *http.Request handed to the
// handler and its http.ResponseWriter. Exchanges are pooled; every field
// is reset by start.
type exchange struct {
	srv  *Server
	fctx *fasthttp.RequestCtx

	cctx  *reqCtx
	tmpl  *http.Request // carries cctx; copied into req for each request
	req   http.Request
	url   url.URL // req.URL for an origin-form target (parseOriginForm)
	hdr   http.Header
	vals  []string
	found seen  // which of seen's names the request came with
	peak  int   // the names hdr held after parsing (for headers.Recycle)
	body  *body // nil for a request without a body

	whdr        http.Header
	status      int
	wroteHeader bool
	written     int64
	declared    int64 // Content-Length set by the handler, -1 when none

	sig   chan mode     // handler goroutine → fasthttp's
	ready chan struct{} // fasthttp's → handler's: header taken over
	conn  chan net.Conn // the hijacked connection
	fin   chan struct{} // the handler returned (hijack waits on it)
	watch *time.Timer   // runs check while the handler runs

	watchMu     sync.Mutex
	watchConn   net.Conn // the connection check looks at; nil: none
	watchNoBody bool     // the request came without a body
	watchArmed  bool     // watch will fire (check rearms it)

	stream    *stream
	inline    bool          // the handler runs on fasthttp's goroutine
	ob        *bufio.Writer // an inline streamed response's writer
	obBody    bool          // it sends a body
	obChunked bool          // in chunks
	obEvery   bool          // every write goes out at once (flushed)
	obClose   bool          // its head said Connection: close
	obErr     error         // writing it failed
	bodyDone  atomic.Bool   // the handler read the request body to its end
	hijacked  bool
	aborted   bool
	refs      atomic.Int32
}

func newExchange(s *Server) *exchange {
	ex := &exchange{
		srv: s, hdr: http.Header{}, whdr: http.Header{},
		sig: make(chan mode, 1), ready: make(chan struct{}, 1), conn: make(chan net.Conn, 1), fin: make(chan struct{}, 1),
	}
	ex.newContext()
	ex.watch = time.AfterFunc(time.Hour, ex.check)
	ex.watch.Stop()
	return ex
}

// serverContext is the parent of every request context. It carries
// http.ServerContextKey, as net/http's request contexts do, because code
// in the shared core keys behaviour on it: httputil.ReverseProxy aborts
// the handler (http.ErrAbortHandler) when copying the upstream's body
// fails only if it is set; without it a body the upstream cut off was
// ended cleanly and passed for whole. The *http.Server is a placeholder:
// nothing reads its fields.
var serverContext = context.WithValue(context.Background(), http.ServerContextKey, &http.Server{})

// newContext gives ex a fresh request context (and the request template
// that carries it).
func (ex *exchange) newContext() {
	ex.cctx = &reqCtx{parent: serverContext}
	ex.tmpl = (&http.Request{}).WithContext(ex.cctx)
}

// body is the request body the handler reads: fasthttp's stream. Each
// request gets its own, because a reference to it can outlive the request:
// the upstream transport may still read it in its own goroutine after
// RoundTrip returned. Once the request ends (end), reads fail with
// http.ErrBodyReadAfterClose, as net/http's do, instead of reading a
// stream that fasthttp drains, releases and hands to the next request.
type body struct {
	ex   *exchange
	conn net.Conn // to cut a read in flight when the request ends

	mu     sync.Mutex // held across each read, as net/http's body does
	r      io.Reader
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.r == nil {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	// The trailers are taken at the first end only: a reader may read
	// on after io.EOF, and gets it again.
	if err != nil && !b.ex.bodyDone.Swap(true) && err == io.EOF && b.ex.req.ContentLength == -1 {
		b.ex.takeTrailers()
	}
	return n, err
}

// takeTrailers sets the trailer fields that ended a chunked request body
// in the request's Trailer, as net/http does when the body reaches its
// end: announced or not, in canonical form, each name's values in order.
// fasthttp has screened them (names, values, and a longer list of
// forbidden names than net/http's). At most maxTrailers names are taken,
// the first ones: fasthttp finds a name's values by a walk of all the
// trailer fields, so a client sending 4,000 of them (43 KB) made taking
// them all cost 66 ms.
func (ex *exchange) takeTrailers() {
	rh := &ex.fctx.Request.Header
	for i, k := range rh.PeekTrailerKeys() {
		if i == maxTrailers {
			break
		}
		name := string(k)
		vals := rh.PeekAllTrailer(name)
		if len(vals) == 0 {
			continue
		}
		vv := make([]string, len(vals))
		for j, v := range vals {
			vv[j] = string(v)
		}
		if ex.req.Trailer == nil {
			ex.req.Trailer = http.Header{}
		}
		ex.req.Trailer[textproto.CanonicalMIMEHeaderKey(name)] = vv
	}
}

// Close stops the handler's reads; fasthttp drains what is left.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r = nil
	return nil
}

// end makes every later read fail; it runs before fasthttp may reuse the
// connection's buffers (the handler returned, or the response stream was
// closed). A read still in flight (a goroutine the handler started) is cut
// short by an expired read deadline and waited for: fasthttp then finds
// the body unfinished and closes the connection.
func (b *body) end() {
	if !b.mu.TryLock() {
		_ = b.conn.SetReadDeadline(time.Unix(1, 0))
		b.mu.Lock()
	}
	b.closed = true
	b.r = nil
	b.mu.Unlock()
}

// endBody ends the request's body, if it has one.
func (ex *exchange) endBody() {
	if ex.body != nil {
		ex.body.end()
	}
}

// Common methods, interned.
var methods = map[string]string{
	"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH",
	"DELETE": "DELETE", "OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
}

// build fills ex.req from fctx; it returns a refusal for a request that
// net/http would not serve.
func (ex *exchange) build(fctx *fasthttp.RequestCtx) *refusal {
	rh := &fctx.Request.Header
	ex.fctx = fctx
	ex.req = *ex.tmpl
	r := &ex.req

	m := rh.Method()
	if !validMethod(m) {
		return refuseMethod
	}
	if s, ok := methods[string(m)]; ok {
		r.Method = s
	} else {
		r.Method = string(m)
	}
	switch string(rh.Protocol()) {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		return refuseVersion
	}
	target := rh.RequestURI()
	if !validTarget(target) {
		return refuseTarget
	}
	raw := rh.RawHeaders()
	// One string holds the target and the header block: keys and values
	// are slices of it. Built in one allocation: a concatenation of the
	// two conversions allocated the longer one first as well.
	var sb strings.Builder
	sb.Grow(len(target) + len(raw))
	sb.Write(target)
	sb.Write(raw)
	all := sb.String()
	r.RequestURI = all[:len(target)]
	// As net/http: CONNECT's authority-form target is parsed as a host.
	rawURL := r.RequestURI
	authority := r.Method == http.MethodConnect && rawURL[0] != '/'
	if authority {
		rawURL = "http://" + rawURL
	}
	u := &ex.url
	if authority || !parseOriginForm(rawURL, u) {
		var err error
		if u, err = url.ParseRequestURI(rawURL); err != nil {
			return refuseTarget
		}
	}
	if authority {
		u.Scheme = ""
	}
	r.URL = u

	// ex.hdr and ex.vals are empty: reset emptied them.
	found, rf := parseHeaders(all[len(target):], ex.hdr, &ex.vals)
	ex.peak = len(ex.hdr)
	if rf != nil {
		return rf
	}
	ex.found = found
	if rf := checkFraming(ex.hdr, found, r.ProtoMajor == 1 && r.ProtoMinor == 1, u.Host != ""); rf != nil {
		return rf
	}
	r.Header = ex.hdr
	r.Host = u.Host
	if found&seenHost != 0 {
		if r.Host == "" {
			if h := ex.hdr["Host"]; len(h) > 0 {
				r.Host = h[0]
			}
		}
		delete(ex.hdr, "Host")
	}

	switch cl := rh.ContentLength(); {
	case cl == -1:
		r.ContentLength = -1
		r.TransferEncoding = chunked
		delete(ex.hdr, "Content-Length")
		delete(ex.hdr, "Transfer-Encoding")
		// As net/http: a chunked request's announced trailers move from
		// the header to Request.Trailer, where its body's end puts the
		// values (body.Read). Without chunks the header stays as sent.
		if vv, ok := ex.hdr["Trailer"]; ok {
			tr, rf := declaredTrailers(vv)
			if rf != nil {
				return rf
			}
			r.Trailer = tr
			delete(ex.hdr, "Trailer")
		}
	case cl > 0:
		r.ContentLength = int64(cl)
	default:
		r.ContentLength = 0
	}
	if r.ContentLength != 0 {
		ex.body = &body{ex: ex, conn: fctx.Conn(), r: fctx.RequestBodyStream()}
		r.Body = ex.body
	} else {
		ex.body = nil
		r.Body = http.NoBody
	}
	r.Close = rh.ConnectionClose() || (r.ProtoMinor == 0 && (found&seenConnection == 0 || !hasKeepAlive(ex.hdr)))

	ci := ex.srv.conns.of(fctx)
	r.RemoteAddr = ci.addr
	if ci.tls != nil {
		// Each request gets its own copy, as on net/http: a handler may
		// keep or change it.
		cs := *ci.tls
		r.TLS = &cs
	}
	return nil
}

var chunked = []string{"chunked"}

func hasKeepAlive(h http.Header) bool {
	for _, v := range h["Connection"] {
		if asciiContainsFold(v, "keep-alive") {
			return true
		}
	}
	return false
}

func asciiContainsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if headers.EqualFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// run serves the request in the handler's goroutine and tells fasthttp's
// goroutine how the response goes out.
// It reports whether the handler hijacked the connection.
func (ex *exchange) run(h http.Handler) (hijacked bool) {
	defer func() {
		rec := recover()
		if rec != nil && rec != http.ErrAbortHandler {
			ex.srv.logf("h1: panic serving %s: %v", ex.req.RemoteAddr, rec)
		}
		// Before fasthttp may drain and reuse the body's stream.
		ex.endBody()
		switch {
		case ex.hijacked:
			hijacked = true
			ex.fin <- struct{}{}
		case ex.stream != nil:
			if rec != nil {
				ex.stream.pw.CloseWithError(io.ErrUnexpectedEOF)
			} else if ex.declared >= 0 && ex.written < ex.declared {
				ex.stream.pw.CloseWithError(io.ErrUnexpectedEOF)
			} else {
				ex.stream.pw.Close()
			}
			ex.unref()
		case rec != nil:
			ex.sig <- modeAbort
		default:
			ex.sig <- modeDone
		}
	}()
	h.ServeHTTP(ex, &ex.req)
	return false
}

// Header returns the response header map.
func (ex *exchange) Header() http.Header { return ex.whdr }

// WriteHeader sets the status; 1xx interim answers other than 101 are
// dropped (they are not sent, which RFC 9110 section 15.2 allows).
func (ex *exchange) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if ex.wroteHeader || ex.hijacked {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	ex.wroteHeader = true
	ex.status = code
	ex.declared = -1
	if v := ex.whdr["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			ex.declared = n
		}
	}
}

// Write adds p to the body: to fasthttp's buffer while the response fits,
// then to the connection (inline) or the stream (worker).
func (ex *exchange) Write(p []byte) (int, error) {
	if ex.hijacked {
		return 0, http.ErrHijacked
	}
	if !ex.wroteHeader {
		ex.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(ex.status) || ex.req.Method == http.MethodHead {
		if len(p) > 0 && !bodyAllowed(ex.status) {
			return 0, http.ErrBodyNotAllowed
		}
		return len(p), nil
	}
	if ex.declared >= 0 && ex.written+int64(len(p)) > ex.declared {
		return 0, http.ErrContentLength
	}
	if ex.stream == nil && ex.ob == nil {
		if len(ex.fctx.Response.Body())+len(p) <= maxBuffered {
			ex.fctx.Response.AppendBody(p)
			ex.written += int64(len(p))
			return len(p), nil
		}
		if ex.inline {
			ex.startInline(false)
		} else if err := ex.startStream(false); err != nil {
			return 0, err
		}
	}
	if ex.ob != nil {
		return ex.writeInline(p)
	}
	n, err := ex.stream.pw.Write(p)
	ex.written += int64(n)
	if err != nil {
		return n, errClientGone
	}
	return n, nil
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

// Flush sends the header and what is buffered now, and makes every later
// write go out as it comes.
func (ex *exchange) Flush() { _ = ex.FlushError() }

// FlushError is Flush for http.ResponseController.
func (ex *exchange) FlushError() error {
	if ex.hijacked {
		return http.ErrHijacked
	}
	if !ex.wroteHeader {
		ex.WriteHeader(http.StatusOK)
	}
	switch {
	case ex.ob != nil:
		return ex.flushInline()
	case ex.stream != nil:
		return nil
	case ex.inline:
		ex.startInline(true)
		if ex.obErr != nil {
			return errClientGone
		}
		return nil
	}
	return ex.startStream(true)
}

// startStream hands a worker's response to fasthttp as a body stream and
// waits until its header has been taken over.
func (ex *exchange) startStream(flushed bool) error {
	pr, pw := io.Pipe()
	st := &stream{ex: ex, pr: pr, pw: pw, flushed: flushed}
	if b := ex.fctx.Response.Body(); len(b) > 0 {
		st.pre = append(st.pre, b...)
	}
	ex.stream = st
	ex.refs.Store(2) // the handler's goroutine and fasthttp's reader
	ex.sig <- modeStream
	<-ex.ready
	return nil
}

// stream is the body fasthttp reads from a streamed response.
type stream struct {
	ex      *exchange
	pre     []byte
	pr      *io.PipeReader
	pw      *io.PipeWriter
	flushed bool
	closed  atomic.Bool
}

func (s *stream) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	n, err := s.pr.Read(p)
	if err == io.EOF {
		// The handler has returned: its trailers are final, and fasthttp
		// writes them after the last chunk.
		s.ex.setTrailers()
	}
	return n, err
}

// Close is fasthttp's: the response is written, or writing it failed. A
// handler still writing then learns that the client is gone.
func (s *stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// fasthttp releases the connection's buffers when this returns, the
	// handler may still run.
	s.ex.endBody()
	s.ex.cctx.cancel()
	_ = s.pr.CloseWithError(errClientGone)
	s.ex.unref()
	return nil
}

// Hijack hands the connection to the handler: fasthttp's goroutine
// returns, fasthttp passes the connection (with what it has buffered of
// it) and keeps it out of its loop until the handler returns.
func (ex *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if ex.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if ex.stream != nil || ex.ob != nil || ex.wroteHeader {
		return nil, nil, errors.New("h1: hijack after the response started")
	}
	if ex.inline {
		// Its handler runs on fasthttp's goroutine, which hands the
		// connection over only once the handler has returned.
		return nil, nil, errNoHijack
	}
	ex.hijacked = true
	ex.srv.workers.Done() // see Server.worker
	ex.sig <- modeHijack
	// fasthttp hands the connection over once its flush of earlier
	// answers succeeded; when that fails it never does.
	t := time.NewTimer(hijackWait)
	defer t.Stop()
	var c net.Conn
	select {
	case c = <-ex.conn:
	case <-t.C:
		return nil, nil, errors.New("h1: the connection failed before the hijack")
	}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// SetReadDeadline is for http.ResponseController.
func (ex *exchange) SetReadDeadline(t time.Time) error { return ex.fctx.SetReadDeadline(t) }

// SetWriteDeadline is for http.ResponseController.
func (ex *exchange) SetWriteDeadline(t time.Time) error { return ex.fctx.SetWriteDeadline(t) }

func (ex *exchange) unref() {
	if ex.refs.Add(-1) == 0 {
		ex.srv.release(ex)
	}
}

// reset readies ex for the pool.
func (ex *exchange) reset() {
	ex.fctx = nil
	ex.req = http.Request{}
	// A request or an answer with many fields leaves no oversized map,
	// or value list, to the requests after it.
	ex.hdr = headers.Recycle(ex.hdr, ex.peak)
	if cap(ex.vals) > 4*headers.MaxPooledFields {
		ex.vals = nil
	} else {
		clear(ex.vals)
		ex.vals = ex.vals[:0]
	}
	ex.found, ex.peak = 0, 0
	ex.body = nil
	ex.bodyDone.Store(false)
	ex.whdr = headers.Recycle(ex.whdr, 0)
	ex.status, ex.wroteHeader, ex.written, ex.declared = 0, false, 0, -1
	ex.stream, ex.hijacked, ex.aborted = nil, false, false
	ex.inline, ex.ob, ex.obBody, ex.obChunked, ex.obEvery, ex.obClose, ex.obErr = false, nil, false, false, false, false, nil
	if ex.cctx.canceled() {
		ex.newContext()
	} else {
		ex.cctx.start()
	}
	select {
	case <-ex.ready:
	default:
	}
}
