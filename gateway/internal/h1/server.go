package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// Options configure a Server.
type Options struct {
	// Handler serves every request.
	Handler http.Handler
	// MaxHeaderBytes bounds the request line and header block; a request
	// over it gets 431. It is also each connection's read buffer, so it is
	// kept small. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the reading of a request's header block.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout time.Duration
	// ErrorLog receives panics and connection errors. Nil: discarded.
	ErrorLog *log.Logger
}

// DefaultMaxHeaderBytes is Options.MaxHeaderBytes' default: 64 KiB, where
// net/http's is 1 MiB, because fasthttp reads the header block into one
// per-connection buffer of this size.
const DefaultMaxHeaderBytes = 64 << 10

// Server serves HTTP/1.1 connections with fasthttp.
type Server struct {
	h       http.Handler
	fs      *fasthttp.Server
	log     *log.Logger
	noKeep  atomic.Bool
	pool    sync.Pool
	work    chan *exchange // to an idle worker
	stop    chan struct{}  // closed by Shutdown: idle workers exit
	stopped sync.Once
	workers sync.WaitGroup
	wpool   sync.Pool     // *bufio.Writer of inline streamed responses
	conns   connInfos     // what requests learn from their connection
	idle    time.Duration // the wait for a kept-alive connection's next request

	carryMu  sync.Mutex
	closing  bool                   // Shutdown has begun: no connection is carried on
	carried  map[*flatConn]struct{} // connections served again after an inline stream
	carrying atomic.Int64           // handed over, not yet counted by fasthttp
	inCarry  atomic.Int64           // handed over, carryOn not returned
}

// workerIdle is how long a handler goroutine waits for its next request
// before it exits.
const workerIdle = 10 * time.Second

// dispatch runs ex's handler on an idle worker, or on a new one. Workers
// outlive their request so that the stack a handler grew (the proxy's
// path is deep) is kept, not grown again by a fresh goroutine each time.
func (s *Server) dispatch(ex *exchange) {
	select {
	case s.work <- ex:
	default:
		s.workers.Add(1)
		go s.worker(ex)
	}
}

// worker serves exchanges until it idles for workerIdle or the server
// stops. A worker whose handler hijacked the connection was already
// detached from s.workers by Hijack: Shutdown does not wait for hijacked
// connections, as net/http's does not.
func (s *Server) worker(ex *exchange) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		if detached := ex.run(s.h); detached {
			return
		}
		t.Reset(workerIdle)
		select {
		case ex = <-s.work:
		case <-t.C:
			s.workers.Done()
			return
		case <-s.stop:
			s.workers.Done()
			return
		}
	}
}

// New returns a Server for opts.
func New(opts Options) *Server {
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	s := &Server{
		h: opts.Handler, log: opts.ErrorLog, work: make(chan *exchange), stop: make(chan struct{}),
		idle: opts.IdleTimeout, carried: map[*flatConn]struct{}{},
	}
	if s.idle <= 0 {
		s.idle = opts.ReadHeaderTimeout // as fasthttp's idle timeout
	}
	s.pool.New = func() any { ex := newExchange(s); ex.reset(); return ex }
	s.fs = &fasthttp.Server{
		Handler:      s.serve,
		ErrorHandler: s.refuseParse,
		// The whole header block must fit the read buffer.
		ReadBufferSize: opts.MaxHeaderBytes,
		// Bodies of any size are streamed to the handler, which applies
		// the route's limit; fasthttp never buffers a whole upload.
		StreamRequestBody:            true,
		MaxRequestBodySize:           1<<63 - 1,
		DisablePreParseMultipartForm: true,
		// ReadTimeout covers the header; serve lifts it for the body.
		ReadTimeout:                   opts.ReadHeaderTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		// fasthttp's parse errors otherwise quote the connection's buffer
		// (the next pipelined request included), and the core puts a body
		// error in its answer and its log.
		SecureErrorLogMessage: true,
		// Idle workers (and their grown stacks) stay for a burst, not
		// for ten seconds.
		MaxIdleWorkerDuration: 2 * time.Second,
		// Nothing reads the request time fasthttp would take for every
		// request (a clock read, 1% of the CPU): the core takes its own.
		LazyRequestTime: true,
		// Every answer is flushed before the next request is read, so
		// that an inline handler may write to the connection itself
		// (inline.go); it also releases each connection's writer
		// between requests.
		ReduceMemoryUsage: true,
		Logger:            quietLogger{s},
	}
	return s
}

// SetKeepAlivesEnabled turns keep-alives off (every answer then carries
// Connection: close) or back on, as http.Server's does.
func (s *Server) SetKeepAlivesEnabled(on bool) { s.noKeep.Store(!on) }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.fs.Serve(lazyListener{ln})
	if err == nil || errors.Is(err, net.ErrClosed) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// and closes idle connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.carryMu.Lock()
	s.closing = true
	s.carryMu.Unlock()
	// A connection handed over to be carried on is counted by fasthttp
	// once its ServeConn runs; wait for that, then close the carried-on
	// connections that wait for their first request (fasthttp would
	// count them as idle only after a grace of seconds).
	if waitZero(ctx, &s.carrying) == nil {
		s.claimCarried()
	}
	err := s.fs.ShutdownWithContext(ctx)
	s.stopped.Do(func() { close(s.stop) })
	if err != nil {
		return err
	}
	// fasthttp has served the carried-on connections to their end; their
	// goroutines return now.
	if err := waitZero(ctx, &s.inCarry); err != nil {
		return err
	}
	// Every connection is closed, so every worker is idle or finishing
	// its handler; they exit now.
	s.workers.Wait()
	return nil
}

// waitZero waits until n is 0 or ctx ends.
func waitZero(ctx context.Context, n *atomic.Int64) error {
	if n.Load() == 0 {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.log != nil {
		s.log.Printf(format, args...)
	}
}

type quietLogger struct{ s *Server }

func (l quietLogger) Printf(format string, args ...any) { l.s.logf(format, args...) }

func (s *Server) release(ex *exchange) {
	ex.reset()
	s.pool.Put(ex)
}

// serve is fasthttp's handler: it builds the request and runs the handler
// inline (serveInline), or, for a request that may hijack its connection,
// on a worker goroutine, and writes what that hands back.
func (s *Server) serve(fctx *fasthttp.RequestCtx) {
	ex := s.pool.Get().(*exchange) // reset: by newExchange or by release
	if rf := ex.build(fctx); rf != nil {
		refuse(fctx, rf)
		s.release(ex)
		return
	}
	if ex.req.RequestURI == "*" && ex.req.Method == http.MethodOptions {
		// As net/http: the server's own answer, never routed.
		fctx.Response.Header.SetContentLength(0)
		s.release(ex)
		return
	}
	if ex.req.ContentLength != 0 {
		// ReadTimeout bounded the header block; the body is the
		// handler's to read, at the upstream's pace.
		_ = fctx.SetReadDeadline(time.Time{})
	}
	if s.noKeep.Load() || ex.req.Close {
		fctx.SetConnectionClose()
	}
	if !mayHijack(ex) {
		s.serveInline(ex)
		return
	}
	s.dispatch(ex)
	switch ex.wait(fctx) {
	case modeDone:
		ex.respond(false)
		s.release(ex)
	case modeStream:
		ex.respond(true)
		ex.ready <- struct{}{}
	case modeHijack:
		if fc := flatOf(fctx.Conn()); fc != nil {
			fc.upgraded.Store(true)
		}
		fctx.HijackSetNoResponse(true)
		fctx.Hijack(func(c net.Conn) {
			ex.conn <- c
			<-ex.fin
			s.release(ex)
		})
	case modeAbort:
		fctx.HijackSetNoResponse(true)
		fctx.Hijack(func(c net.Conn) { _ = c.Close() })
		s.release(ex)
	}
}

// watchEvery is how often a request whose handler is still running looks
// whether its client has closed the connection.
const watchEvery = 200 * time.Millisecond

// wait returns the handler's mode. While the handler runs, ex.watch looks
// every watchEvery whether the client has closed its connection and then
// cancels the request's context, as net/http's background read does, so
// that the core stops waiting for the upstream and counts the client as
// gone.
func (ex *exchange) wait(fctx *fasthttp.RequestCtx) mode {
	ex.watchStart(fctx)
	m := <-ex.sig
	ex.watchStop()
	return m
}

// watchStart starts looking whether the client is gone (see wait). The
// timer is not reset per request: once armed it fires within watchEvery
// and rearms itself while a request is in flight (check), so that a
// request on a busy exchange costs no timer operation; it disarms when it
// finds none.
func (ex *exchange) watchStart(fctx *fasthttp.RequestCtx) {
	ex.watchMu.Lock()
	ex.watchConn = baseConn(fctx.Conn())
	ex.watchNoBody = ex.req.ContentLength == 0 // the handler may change it
	if !ex.watchArmed {
		ex.watchArmed = true
		ex.watch.Reset(watchEvery)
	}
	ex.watchMu.Unlock()
}

// watchStop ends the looking once the handler has returned; it waits for
// a check under way.
func (ex *exchange) watchStop() {
	ex.watchMu.Lock()
	ex.watchConn = nil
	ex.watchMu.Unlock()
}

// check is ex.watch's function: see wait.
func (ex *exchange) check() {
	ex.watchMu.Lock()
	defer ex.watchMu.Unlock()
	if ex.watchConn == nil {
		ex.watchArmed = false // no request: the next one arms it again
		return
	}
	// Not while the handler may be blocked reading the body: the peek
	// would wait for the connection's read lock.
	idle := ex.watchNoBody || ex.bodyDone.Load()
	if idle && peerClosed(ex.watchConn) {
		ex.cctx.cancel()
		ex.watchArmed = false
		return
	}
	ex.watch.Reset(watchEvery)
}

// respond copies the handler's header to fasthttp's response; a streamed
// response gets its body stream, with the Content-Length the handler set
// or chunked.
func (ex *exchange) respond(streamed bool) {
	resp := &ex.fctx.Response
	if streamed {
		ex.copyHeader(ex.stream.pre)
	} else if ex.copyHeader(resp.Body()) {
		ex.setTrailers() // the handler has returned: its header is final
	}
	isHead := ex.req.Method == http.MethodHead
	switch {
	case streamed:
		st := ex.stream
		size := -1
		if ex.declared >= 0 {
			size = int(ex.declared)
		}
		resp.SetBodyStream(st, size)
		resp.ImmediateHeaderFlush = st.flushed
	case isHead && ex.declared >= 0:
		resp.Header.SetContentLength(int(ex.declared))
	case ex.declared >= 0 && ex.written != ex.declared && bodyAllowed(ex.status):
		// Short of the Content-Length it declared: the client must not
		// read the next answer from where this one should have gone on.
		// fasthttp fails the short stream and closes the connection.
		short := bytes.Clone(resp.Body())
		resp.SetBodyStream(bytes.NewReader(short), int(ex.declared))
		ex.fctx.SetConnectionClose()
	}
}

// copyHeader copies the handler's status and header to fasthttp's
// response; body is the start of the body, to sniff a missing
// Content-Type from.
// It reports whether the header holds a Trailer or a http.TrailerPrefix
// name, which setTrailers looks for.
func (ex *exchange) copyHeader(body []byte) (trailers bool) {
	resp := &ex.fctx.Response
	if !ex.wroteHeader {
		ex.WriteHeader(http.StatusOK)
	}
	resp.SetStatusCode(ex.status)
	haveType := false
	for k, vv := range ex.whdr {
		switch k {
		case "Content-Length", "Transfer-Encoding":
			continue
		case "Trailer":
			trailers = true
			for _, name := range announcedTrailers(vv) {
				_ = resp.Header.AddTrailer(name) // fasthttp refuses forbidden names
			}
			continue
		case "Content-Type":
			haveType = true
		case "Connection":
			for _, v := range vv {
				if asciiContainsFold(v, "close") {
					ex.fctx.SetConnectionClose()
				}
			}
			continue
		}
		if len(k) > len(http.TrailerPrefix) && k[:len(http.TrailerPrefix)] == http.TrailerPrefix {
			trailers = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // as net/http, which would write it broken
		}
		for _, v := range vv {
			resp.Header.Add(k, v) // fasthttp writes CR and LF as spaces
		}
	}
	if !haveType && bodyAllowed(ex.status) && ex.written > 0 {
		b := body
		if len(b) > 512 {
			b = b[:512]
		}
		if len(b) > 0 {
			resp.Header.SetContentType(http.DetectContentType(b))
		}
	}
	return trailers
}

// setTrailers gives fasthttp the trailer values the handler set: the
// announced names, and names with http.TrailerPrefix. fasthttp sends them
// after a chunked body.
func (ex *exchange) setTrailers() {
	h := &ex.fctx.Response.Header
	announced := announcedTrailers(ex.whdr["Trailer"])
	for _, name := range announced {
		setAll(h, name, ex.whdr[name])
	}
	n := len(announced)
	for k, vv := range ex.whdr {
		if n >= maxTrailers {
			break
		}
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && len(vv) > 0 {
			if h.AddTrailer(name) == nil {
				setAll(h, name, vv)
				n++
			}
		}
	}
}

// setAll sets every value of vv under name, in order (a trailer may be
// sent more than once, as a header may).
func setAll(h *fasthttp.ResponseHeader, name string, vv []string) {
	for i, v := range vv {
		if i == 0 {
			h.Set(name, v)
		} else {
			h.Add(name, v)
		}
	}
}

// maxTrailers bounds the trailer fields of one answer. fasthttp announces
// each trailer name by moving the header fields already set under it, and
// checks every header it adds against the trailer names: an upstream
// announcing thousands of trailers with thousands of headers cost hundreds
// of milliseconds per answer. Answers carry a handful (gRPC's status and
// message, a checksum, Server-Timing); the names past the bound are not
// announced and their values are not sent.
const maxTrailers = 32

// announcedTrailers returns the names that the Trailer values vv announce
// (trailerNames), at most maxTrailers.
func announcedTrailers(vv []string) []string {
	var names []string
	for name := range trailerNames(vv) {
		if len(names) == maxTrailers {
			break
		}
		names = append(names, name)
	}
	return names
}

// trailerNames yields the names that the Trailer values vv announce, one
// per comma-separated element, trimmed and canonical, empty ones left out:
// as net/http reads an announcement, in a request or an answer.
func trailerNames(vv []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range vv {
			for f := range strings.SplitSeq(v, ",") {
				if f = textproto.TrimString(f); f != "" && !yield(textproto.CanonicalMIMEHeaderKey(f)) {
					return
				}
			}
		}
	}
}

// refuse answers a request the adapter does not serve, as net/http does:
// the status, a plain-text reason, and the connection closed.
func refuse(fctx *fasthttp.RequestCtx, rf *refusal) {
	fctx.Response.Reset()
	fctx.SetStatusCode(rf.status)
	fctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	fctx.SetBodyString(strconv.Itoa(rf.status) + " " + http.StatusText(rf.status) + ": " + rf.reason)
	fctx.SetConnectionClose()
}

// refuseParse answers what fasthttp's parser refused.
func (s *Server) refuseParse(fctx *fasthttp.RequestCtx, err error) {
	status := http.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	fctx.Response.Reset()
	fctx.SetStatusCode(status)
	fctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	fctx.SetBodyString(fmt.Sprintf("%d %s", status, http.StatusText(status)))
	fctx.SetConnectionClose()
}
