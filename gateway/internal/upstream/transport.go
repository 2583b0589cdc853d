package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// fastTransport is the pool's http.RoundTripper. Plain http:// requests
// without an upgrade, an Expect header, trailers or a streamed body take a
// synchronous HTTP/1.1 exchange on a kept-alive connection of the target
// (write the request, read the response head with http.ReadResponse in the
// calling goroutine, hand the connection back when the body has been read
// to its end). Everything else, and every request of a pool with
// MaxConnsPerTarget set, goes through slow, the pool's http.Transport.
//
// The synchronous path saves what http.Transport spends per request on its
// two connection goroutines (a hand-off to the writer, a hand-off back from
// the reader, and the reader's extra read after each response).
type fastTransport struct {
	slow    *http.Transport
	dialer  *net.Dialer
	maxHead int64
	maxIdle int
	// enabled is false when the fast path serves nothing (see
	// newFastTransport).
	enabled bool

	// conns holds the connection pools by URL.Host of the targets. The map
	// is never changed once stored: sync stores a new one, under mu.
	conns atomic.Pointer[map[string]*connPool]
	mu    sync.Mutex
}

// Bounds of the fast path.
const (
	// maxFastBody is the largest request body (with a Content-Length) that
	// is buffered and sent by the fast path; larger ones stream through the
	// slow path.
	maxFastBody = 64 << 10
	// idleTimeout closes connections idle for longer, as http.Transport's
	// IdleConnTimeout does.
	idleTimeout = 90 * time.Second
	// max1xx is how many informational responses one request may get, as
	// in http.Transport.
	max1xx = 5
	// defaultMaxHead is http.Transport's default MaxResponseHeaderBytes.
	defaultMaxHead = 10 << 20
)

func newFastTransport(slow *http.Transport, dialer *net.Dialer, enabled bool, maxIdle, maxConns int) *fastTransport {
	t := &fastTransport{slow: slow, dialer: dialer, maxHead: slow.MaxResponseHeaderBytes, maxIdle: maxIdle}
	if t.maxHead <= 0 {
		t.maxHead = defaultMaxHead
	}
	// A cap on connections is enforced by http.Transport alone, so that
	// the two paths never add up to more than the cap. Without a
	// non-blocking probe an idle connection cannot be checked for
	// unsolicited bytes, so it is not reused by the fast path.
	t.enabled = enabled && maxConns <= 0 && canProbe
	t.conns.Store(&map[string]*connPool{})
	return t
}

// sync makes the fast path serve the http:// targets among targets: a
// target that stays keeps its connection pool, a new one gets an empty
// pool, and the pool of a target no longer listed has its idle connections
// closed (connections in use are closed when they come back).
func (t *fastTransport) sync(targets []*Target) {
	if !t.enabled {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.conns.Load()
	next := make(map[string]*connPool, len(targets))
	for _, tg := range targets {
		if tg.URL.Scheme != "http" {
			continue
		}
		if cp := old[tg.URL.Host]; cp != nil {
			next[tg.URL.Host] = cp
			continue
		}
		next[tg.URL.Host] = &connPool{maxIdle: t.maxIdle, addr: hostPort(tg.URL.Host)}
	}
	t.conns.Store(&next)
	for host, cp := range old {
		if next[host] == nil {
			cp.closeIdle()
		}
	}
}

// hostPort adds the default port 80 to a host without one.
func hostPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(trimBrackets(host), "80")
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// CloseIdleConnections closes the idle connections of both paths; later
// returned connections are closed instead of kept.
func (t *fastTransport) CloseIdleConnections() {
	for _, cp := range *t.conns.Load() {
		cp.closeIdle()
	}
	t.slow.CloseIdleConnections()
}

// RoundTrip sends req on the fast path when it can, else on the slow one.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, _, err := t.roundTrip(req, new(fastResponse))
	return res, err
}

// roundTrip is RoundTrip with the fast path's response in fr; slow reports
// that req went to the http.Transport, which may go on using it after
// returning (writing a body that the upstream answered before reading).
func (t *fastTransport) roundTrip(req *http.Request, fr *fastResponse) (res *http.Response, slow bool, err error) {
	cp := (*t.conns.Load())[req.URL.Host]
	if cp == nil || !fastEligible(req) {
		res, err := t.slow.RoundTrip(req)
		return res, true, err
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := readBody(req.Body, req.ContentLength)
		_ = req.Body.Close()
		if err != nil {
			return nil, false, fmt.Errorf("reading request body for %s: %w", cp.addr, err)
		}
		body = b
	}
	ctx := req.Context()
	for try := 0; ; try++ {
		pc, reused, err := cp.get(ctx, t.dialer, try > 0)
		if err != nil {
			return nil, false, err
		}
		res, stale, err := t.exchange(ctx, cp, pc, req, body, fr)
		if err == nil {
			return res, false, nil
		}
		if reused && stale && try == 0 && ctx.Err() == nil {
			continue // the upstream closed the idle connection: not processed
		}
		return nil, false, err
	}
}

// fastEligible reports whether req can take the synchronous path.
func fastEligible(req *http.Request) bool {
	if req.URL.Scheme != "http" || len(req.Trailer) > 0 || req.Close {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(h["Te"]) > 0 {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > maxFastBody) {
		return false
	}
	return true
}

// readBody reads a body of known length n.
func readBody(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	var one [1]byte
	if m, _ := r.Read(one[:]); m > 0 {
		return nil, errors.New("request body longer than its Content-Length")
	}
	return buf, nil
}

// exchange writes req on pc and reads the response head. stale reports an
// error that a reused connection closed by the upstream explains, before
// the request could have been processed.
func (t *fastTransport) exchange(ctx context.Context, cp *connPool, pc *persistConn, req *http.Request, body []byte, fr *fastResponse) (*http.Response, bool, error) {
	stop := pc.watch(ctx)
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		_ = pc.conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, false, fmt.Errorf("exchange with %s: %w", cp.addr, context.Cause(ctx))
		}
		return nil, false, fmt.Errorf("exchange with %s: %w", cp.addr, err)
	}
	if err := writeRequest(pc.bw, req, body); err != nil {
		return fail(err)
	}
	if err := pc.bw.Flush(); err != nil {
		res, _, err := fail(err)
		return res, pc.cr.written == 0, err
	}
	pc.cr.limit = t.maxHead
	n1xx := 0
	var res *http.Response // fr's: the response, 1xx answers before it included
	for {
		var err error
		pc.cr.read = 0
		res, err = readResponse(pc.br, req, fr)
		if err != nil {
			// Nothing at all came back: the upstream had closed the idle
			// connection. Only replayable requests are resent, as
			// http.Transport does.
			stale := pc.cr.read == 0 && pc.br.Buffered() == 0 && replayable(req) && isClosedConn(err)
			res, _, err := fail(err)
			return res, stale, err
		}
		code := res.StatusCode
		if code < 100 || code > 199 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			return fail(errors.New("upstream switched protocols without an upgrade request"))
		}
		if n1xx++; n1xx > max1xx {
			return fail(errors.New("too many 1xx informational responses"))
		}
		pc.cr.limit = t.maxHead
		if inf, ok := ctx.Value(InformationalKey{}).(Informational); ok {
			if err := inf.Got1xx(code, res.Header); err != nil {
				return fail(err)
			}
		} else if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err)
			}
		}
	}
	pc.cr.limit = -1
	keep := !res.Close && !req.Close
	if res.Body == http.NoBody {
		pc.done(cp, stop, keep)
		return res, false, nil
	}
	fr.fb = fastBody{rc: res.Body, pc: pc, cp: cp, stop: stop, keep: keep}
	res.Body = &fr.fb
	return res, false, nil
}

func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(req.Header["Idempotency-Key"]) > 0 || len(req.Header["X-Idempotency-Key"]) > 0
}

// isClosedConn reports an error that an upstream's close explains.
func isClosedConn(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "read" || op.Op == "write")
}

// excludedHeader reports the headers the request line and framing carry,
// not the header map (as in net/http's request writer). A switch, not a
// map: it runs for every header of every request.
func excludedHeader(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

var errHeaderValue = errors.New("invalid header field value")

// writeRequest writes req's head and body in HTTP/1.1 framing, as
// http.Transport would: Host from req.Host, User-Agent only when set,
// Content-Length for a body and for methods other than GET and HEAD.
func writeRequest(bw *bufio.Writer, req *http.Request, body []byte) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validValue(host) {
		return fmt.Errorf("invalid Host header %q", host)
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	writeRequestURI(bw, req.URL)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		if err := writeHeader(bw, "User-Agent", ua[:1]); err != nil {
			return err
		}
	}
	if len(body) > 0 || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		_, _ = bw.WriteString("Content-Length: ")
		var num [20]byte
		_, _ = bw.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
		_, _ = bw.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		if excludedHeader(k) {
			continue
		}
		if err := writeHeader(bw, k, vv); err != nil {
			return err
		}
	}
	_, _ = bw.WriteString("\r\n")
	_, err := bw.Write(body)
	return err
}

// writeRequestURI writes u.RequestURI() without joining its parts into
// a new string first.
func writeRequestURI(bw *bufio.Writer, u *url.URL) {
	if u.Opaque != "" {
		_, _ = bw.WriteString(u.RequestURI())
		return
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	_, _ = bw.WriteString(path)
	if u.ForceQuery || u.RawQuery != "" {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(u.RawQuery)
	}
}

func writeHeader(bw *bufio.Writer, k string, vv []string) error {
	if !headers.IsToken(k) {
		return fmt.Errorf("invalid header field name %q", k)
	}
	for _, v := range vv {
		v = textproto.TrimString(v)
		if !validValue(v) {
			return fmt.Errorf("%w for %q", errHeaderValue, k)
		}
		writeField(bw, k, v)
	}
	return nil
}

// writeField writes the field line "k: v\r\n": appended to the writer's
// free space in one go when it fits, which costs a quarter of four
// WriteString calls.
func writeField(bw *bufio.Writer, k, v string) {
	if len(k)+len(v)+4 > bw.Available() {
		_, _ = bw.WriteString(k)
		_, _ = bw.WriteString(": ")
		_, _ = bw.WriteString(v)
		_, _ = bw.WriteString("\r\n")
		return
	}
	b := bw.AvailableBuffer()
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	b = append(b, "\r\n"...)
	_, _ = bw.Write(b)
}

// validValue reports a field value without control characters but tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fastBody is the response body of a fast exchange: the connection goes
// back to the pool once the body was read to its end, and is closed when
// the body is closed early.
type fastBody struct {
	rc       io.ReadCloser
	pc       *persistConn
	cp       *connPool
	stop     func() bool
	keep     bool
	finished bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.finished {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finished = true
		b.pc.done(b.cp, b.stop, b.keep)
	} else if err != nil {
		b.finished = true
		b.pc.done(b.cp, b.stop, false)
	}
	return n, err
}

func (b *fastBody) Close() error {
	if !b.finished {
		b.finished = true
		b.pc.done(b.cp, b.stop, false)
	}
	return nil
}

// epoch anchors clock.
var epoch = time.Now()

// clock reads the monotonic clock alone, as a time since epoch: idle times
// are durations, and time.Now reads the wall clock too, twice the cost on
// every request.
func clock() time.Duration { return time.Since(epoch) }

// connPool holds the idle connections of one target.
type connPool struct {
	addr    string
	maxIdle int

	mu     sync.Mutex
	idle   []*persistConn // most recently used last
	closed bool
}

// get returns an idle connection (reused true) or dials a new one; fresh
// forces a dial.
func (cp *connPool) get(ctx context.Context, d *net.Dialer, fresh bool) (*persistConn, bool, error) {
	for !fresh {
		cp.mu.Lock()
		n := len(cp.idle)
		if n == 0 {
			cp.mu.Unlock()
			break
		}
		pc := cp.idle[n-1]
		cp.idle[n-1] = nil
		cp.idle = cp.idle[:n-1]
		cp.mu.Unlock()
		// Every reuse is checked, however short the idle time: an upstream
		// may have written a response that nobody asked for (after a HEAD
		// answer with a Content-Length, a 204, a 304 or a complete body)
		// after the connection went idle, and that response must never be
		// read as the answer to the next request.
		if clock()-pc.since > idleTimeout || !pc.probe.alive() {
			_ = pc.conn.Close()
			continue
		}
		return pc, true, nil
	}
	c, err := d.DialContext(ctx, "tcp", cp.addr)
	if err != nil {
		return nil, false, err
	}
	pc := &persistConn{conn: c, probe: newProber(c)}
	pc.cr.c = c
	pc.br = bufio.NewReaderSize(&pc.cr, 4<<10)
	pc.bw = bufio.NewWriterSize(&countWriter{pc: pc}, 4<<10)
	pc.abortFn = pc.abort
	pc.unwatchFn = pc.unwatch
	return pc, false, nil
}

// put keeps pc for reuse, or closes it when the pool is full or closed.
func (cp *connPool) put(pc *persistConn) {
	pc.since = clock()
	cp.mu.Lock()
	if cp.closed || len(cp.idle) >= cp.maxIdle {
		cp.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	var expired *persistConn
	if len(cp.idle) > 0 && pc.since-cp.idle[0].since > idleTimeout {
		expired = cp.idle[0]
		cp.idle = append(cp.idle[:0], cp.idle[1:]...)
	}
	cp.idle = append(cp.idle, pc)
	cp.mu.Unlock()
	if expired != nil {
		_ = expired.conn.Close()
	}
}

func (cp *connPool) closeIdle() {
	cp.mu.Lock()
	idle := cp.idle
	cp.idle, cp.closed = nil, true
	cp.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
}

// persistConn is one kept-alive connection with its buffers.
type persistConn struct {
	conn  net.Conn
	cr    connReader
	br    *bufio.Reader
	bw    *bufio.Writer
	since time.Duration // when it went idle (clock)
	probe *prober       // checks the idle connection before reuse
	// abortFn and unwatchFn are pc.abort and pc.unwatch, made once per
	// connection rather than once per exchange (a method value allocates).
	abortFn   func()
	unwatchFn func() bool
	// aborter is the request context watching pc, while one does.
	aborter Aborter
}

// abort interrupts a blocked read or write when the request's context ends.
func (pc *persistConn) abort() { _ = pc.conn.SetDeadline(aLongTimeAgo) }

// watch arranges for pc.abort to run when ctx is canceled, through ctx
// itself when it is an Aborter that takes the watch (no allocation), else
// context.AfterFunc. The returned stop removes it, false when it ran
// already.
func (pc *persistConn) watch(ctx context.Context) func() bool {
	if a, ok := ctx.(Aborter); ok && a.Watch(pc.abortFn) {
		pc.aborter = a
		return pc.unwatchFn
	}
	return context.AfterFunc(ctx, pc.abortFn)
}

// unwatch is the stop of a watch through an Aborter.
func (pc *persistConn) unwatch() bool {
	a := pc.aborter
	pc.aborter = nil
	return a.Unwatch()
}

var aLongTimeAgo = time.Unix(1, 0)

// done ends an exchange: the connection is kept when keep holds, the
// response was read to its end with nothing after it, and the context did
// not abort it. Bytes that arrive later are caught by the probe in get.
func (pc *persistConn) done(cp *connPool, stop func() bool, keep bool) {
	if !stop() || !keep || pc.br.Buffered() > 0 {
		_ = pc.conn.Close()
		return
	}
	pc.cr.written = 0
	cp.put(pc)
}

// connReader counts what is read and bounds a response head: limit bytes
// may be read while it is positive; -1 lifts it.
type connReader struct {
	c     net.Conn
	limit int64
	read  int64
	// written counts bytes written by the current exchange.
	written int64
}

var errHeadTooLarge = errors.New("upstream response headers too large")

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit == 0 {
		return 0, errHeadTooLarge
	}
	if r.limit > 0 && int64(len(p)) > r.limit {
		p = p[:r.limit]
	}
	n, err := r.c.Read(p)
	r.read += int64(n)
	if r.limit > 0 {
		r.limit -= int64(n)
	}
	return n, err
}

type countWriter struct{ pc *persistConn }

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.pc.conn.Write(p)
	w.pc.cr.written += int64(n)
	return n, err
}
