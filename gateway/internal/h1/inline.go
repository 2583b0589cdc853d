package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A request that cannot hijack its connection (no Upgrade header, not
// CONNECT) runs its handler inline, on fasthttp's connection goroutine:
// no handoff to a worker, no goroutine switch. While the response stays in
// fasthttp's buffer it is answered as a worker's is (exchange.respond).
// Once the handler flushes or outgrows the buffer it cannot give control
// back to fasthttp, so it writes the response to the connection itself:
// the head serialised by fasthttp's ResponseHeader, the body framed by the
// Content-Length the handler set, chunked (HTTP/1.1) or ended by closing
// the connection (HTTP/1.0). fasthttp then writes no response of its own
// (HijackSetNoResponse) and hands the connection over, and the adapter
// serves the connection's next requests with fasthttp's ServeConn on a
// flatConn that carries the bytes fasthttp had read ahead.
//
// Writing to the connection is in order because fasthttp flushes every
// answer before it reads the next request (Server.ReduceMemoryUsage): its
// writer never holds a pipelined answer back while a handler runs.

// inlineBuffer is the size of the writer of an inline streamed response.
const inlineBuffer = 32 << 10

// maxDrain is how much of a request body the handler left unread is read
// and discarded so that the connection can serve its next request, as
// fasthttp's own limit; with more left the connection is closed.
const maxDrain = 256 << 10

// mayHijack reports whether the handler may hijack the connection of ex's
// request, and so runs on a worker goroutine.
func mayHijack(ex *exchange) bool {
	return ex.req.Method == http.MethodConnect || ex.found&seenUpgrade != 0 // parsed, not yet touched by a handler
}

// serveInline runs the handler on fasthttp's goroutine and answers.
func (s *Server) serveInline(ex *exchange) {
	fctx := ex.fctx
	ex.inline = true
	ex.watchStart(fctx)
	rec := ex.runInline(s.h)
	ex.watchStop()
	if rec != nil && rec != http.ErrAbortHandler {
		s.logf("h1: panic serving %s: %v", ex.req.RemoteAddr, rec)
	}
	// Before the body's stream is drained or released.
	ex.endBody()
	switch {
	case ex.ob != nil:
		s.finishInline(ex, rec != nil)
	case rec != nil:
		// No answer: as net/http, the connection is closed.
		fctx.HijackSetNoResponse(true)
		fctx.Hijack(func(c net.Conn) { _ = c.Close() })
	default:
		ex.respond(false)
	}
	s.release(ex)
}

// runInline runs h and returns what it panicked with.
func (ex *exchange) runInline(h http.Handler) (rec any) {
	defer func() { rec = recover() }()
	h.ServeHTTP(ex, &ex.req)
	return nil
}

// startInline writes the response's head and its body so far to the
// connection; every later write goes there too, and at once when flushed.
func (ex *exchange) startInline(flushed bool) {
	fctx := ex.fctx
	resp := &fctx.Response
	h := &resp.Header
	pre := resp.Body()
	ex.copyHeader(pre)
	isHead := ex.req.Method == http.MethodHead
	ex.obBody = bodyAllowed(ex.status) && !isHead
	closeConn := h.ConnectionClose() || ex.srv.isClosing()
	switch {
	case !bodyAllowed(ex.status):
		// fasthttp keeps a 304's Content-Length and writes none for a 204.
		if ex.declared >= 0 {
			h.SetContentLength(int(ex.declared))
		}
	case ex.declared >= 0:
		h.SetContentLength(int(ex.declared))
	case ex.req.ProtoMinor == 0:
		if !isHead {
			// HTTP/1.0 knows no chunks: the body ends with the
			// connection.
			closeConn = true
		}
	default:
		h.SetContentLength(-1) // Transfer-Encoding: chunked
		ex.obChunked = ex.obBody
	}
	if closeConn {
		h.SetConnectionClose()
	} else if ex.req.ProtoMinor == 0 {
		h.Set("Connection", "keep-alive")
	}
	ex.obClose = closeConn
	ex.obEvery = flushed
	ex.ob = ex.srv.getWriter(fctx.Conn())
	err := h.Write(ex.ob)
	if err == nil && ex.obBody && len(pre) > 0 {
		err = ex.writeFramed(pre)
	}
	if err == nil && flushed {
		err = ex.ob.Flush()
	}
	resp.ResetBody()
	if err != nil {
		ex.lost(err)
	}
}

// writeInline writes p (body bytes: the caller checked that a body is
// allowed and its length) to the connection.
func (ex *exchange) writeInline(p []byte) (int, error) {
	if ex.obErr != nil {
		return 0, errClientGone
	}
	if len(p) == 0 {
		return 0, nil
	}
	err := ex.writeFramed(p)
	if err == nil && ex.obEvery {
		err = ex.ob.Flush()
	}
	if err != nil {
		ex.lost(err)
		return 0, errClientGone
	}
	ex.written += int64(len(p))
	return len(p), nil
}

// writeFramed writes p as one chunk of a chunked body, or as it is.
func (ex *exchange) writeFramed(p []byte) error {
	if !ex.obChunked {
		_, err := ex.ob.Write(p)
		return err
	}
	var size [20]byte
	b := strconv.AppendInt(size[:0], int64(len(p)), 16)
	b = append(b, '\r', '\n')
	if _, err := ex.ob.Write(b); err != nil {
		return err
	}
	if _, err := ex.ob.Write(p); err != nil {
		return err
	}
	_, err := ex.ob.WriteString("\r\n")
	return err
}

// flushInline sends what the inline writer holds, and makes every later
// write go out at once.
func (ex *exchange) flushInline() error {
	ex.obEvery = true
	if ex.obErr != nil {
		return errClientGone
	}
	if err := ex.ob.Flush(); err != nil {
		ex.lost(err)
		return errClientGone
	}
	return nil
}

// lost records that writing to the client failed: the client is gone, the
// request's context ends and its body reads no more, as when fasthttp
// fails a streamed answer.
func (ex *exchange) lost(err error) {
	if ex.obErr == nil {
		ex.obErr = err
	}
	ex.cctx.cancel()
	ex.endBody()
}

// finishInline ends an inline streamed response after its handler
// returned: the last chunk and the trailers, then either the connection
// goes on serving or it is closed.
func (s *Server) finishInline(ex *exchange, panicked bool) {
	fctx := ex.fctx
	whole := !panicked && ex.obErr == nil &&
		!(ex.obBody && ex.declared >= 0 && ex.written < ex.declared)
	if whole && ex.obChunked {
		ex.setTrailers()
		_, err := ex.ob.WriteString("0\r\n")
		if err == nil {
			_, err = ex.ob.Write(fctx.Response.Header.TrailerHeader())
		}
		if err != nil {
			ex.lost(err)
			whole = false
		}
	}
	// What was written goes out, a cut-off body too: the closed
	// connection then tells the client it is not whole.
	if err := ex.ob.Flush(); err != nil {
		ex.lost(err)
		whole = false
	}
	s.putWriter(ex.ob)
	ex.ob = nil

	fctx.HijackSetNoResponse(true)
	fc := flatOf(fctx.Conn())
	if !whole || ex.obClose || !drained(ex) || !s.holdCarry(fc != nil) {
		fctx.Hijack(func(c net.Conn) { _ = c.Close() })
		return
	}
	if fc != nil {
		// The connection's carrying goroutine serves it on.
		fctx.Hijack(func(hj net.Conn) { fc.handOn(takePending(hj, fc.Conn)) })
		return
	}
	base := fctx.Conn()
	fctx.Hijack(func(hj net.Conn) { s.carry(base, takePending(hj, base)) })
}

// drained reads what the handler left of the request body, up to
// maxDrain, and reports whether the body ended: the next request starts
// where it did.
func drained(ex *exchange) bool {
	if ex.req.ContentLength == 0 {
		return true
	}
	rs := ex.fctx.RequestBodyStream()
	if rs == nil {
		return true
	}
	_, err := io.CopyN(io.Discard, rs, maxDrain+1)
	return err == io.EOF
}

// holdCarry registers a connection about to be carried on, unless the
// server is shutting down; nested: its carrying goroutine runs already.
func (s *Server) holdCarry(nested bool) bool {
	s.carryMu.Lock()
	defer s.carryMu.Unlock()
	if s.closing {
		return false
	}
	s.carrying.Add(1)
	if !nested {
		s.inCarry.Add(1)
	}
	return true
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.carryMu.Lock()
	defer s.carryMu.Unlock()
	return s.closing
}

// handoff is what a hijacked connection held: the bytes fasthttp had read
// ahead of the next request, and whether the connection is still usable.
type handoff struct {
	pending []byte
	ok      bool
	held    bool // counted in Server.carrying (holdCarry)
}

// takePending reads from hj, fasthttp's hijacked connection over base,
// what fasthttp (and TLS) had read ahead: everything buffered comes back
// at once, then base, whose read deadline has passed, times out without
// reading. The bytes are taken out so that a connection carried on many
// times does not stack readers, and fasthttp's reader goes back to its
// pool when the hijack handler returns.
func takePending(hj, base net.Conn) handoff {
	_ = base.SetReadDeadline(time.Unix(1, 0))
	h := handoff{held: true}
	bp := takeBuf.Get().(*[4096]byte)
	defer takeBuf.Put(bp)
	buf := bp[:]
	for {
		n, err := hj.Read(buf)
		h.pending = append(h.pending, buf[:n]...)
		if err != nil {
			var ne net.Error
			h.ok = errors.As(err, &ne) && ne.Timeout()
			break
		}
	}
	_ = base.SetReadDeadline(time.Time{})
	// A connection the client closed may still hold requests it sent.
	h.ok = h.ok || len(h.pending) > 0
	return h
}

var takeBuf = sync.Pool{New: func() any { return new([4096]byte) }}

// carry serves the rest of a connection whose last response an inline
// handler wrote itself, with fasthttp's ServeConn on a flatConn that
// reads h's bytes first, and again after each further inline stream
// (handOn). It runs in fasthttp's hijack goroutine, which closes base
// when it returns: it returns when the connection is done.
func (s *Server) carry(base net.Conn, h handoff) {
	counted := true // in s.inCarry
	defer func() {
		if counted {
			s.inCarry.Add(-1)
		}
	}()
	var tc *tls.Conn
	tc, _ = base.(*tls.Conn)
	for h.ok {
		fc := &flatConn{Conn: base, srv: s, pending: h.pending, next: make(chan handoff, 1)}
		fc.armed.Store(true)
		if len(fc.pending) > 0 {
			fc.state.Store(connLive)
		}
		var c net.Conn = fc
		if tc != nil {
			c = &flatTLSConn{flatConn: fc, tls: tc}
		}
		s.carryMu.Lock()
		s.carried[fc] = struct{}{}
		s.carryMu.Unlock()
		_ = s.fs.ServeConn(c)
		fc.start()
		s.carryMu.Lock()
		delete(s.carried, fc)
		s.carryMu.Unlock()
		if fc.upgraded.Load() && counted {
			// A worker hijacked the connection (WebSocket): as for any
			// hijacked connection, Shutdown does not wait for it.
			s.inCarry.Add(-1)
			counted = false
		}
		h = <-fc.next // handOn, or Close
	}
	if h.held {
		s.carrying.Add(-1) // held by holdCarry, and not carried on
	}
}

// Connection states of a flatConn, for Shutdown.
const (
	connFresh   int32 = iota // no byte of a next request yet
	connLive                 // a request has begun
	connClaimed              // closed by Shutdown while fresh
)

// flatConn is a connection fasthttp serves again after an inline handler
// wrote a response itself: pending holds the bytes fasthttp had read ahead
// of the next request.
type flatConn struct {
	net.Conn // the accepted connection
	srv      *Server
	pending  []byte
	next     chan handoff // to the carrying goroutine: go on, or done
	armed    atomic.Bool  // the first read deadline is the wait for a request
	state    atomic.Int32
	started  atomic.Bool
	handed   atomic.Bool // the connection went on to a next flatConn
	closed   atomic.Bool
	upgraded atomic.Bool // a worker hijacked it
}

// handOn passes the connection, after another inline stream, to the
// carrying goroutine.
func (c *flatConn) handOn(h handoff) {
	c.handed.Store(true)
	c.next <- h
}

// Close closes the connection, unless it went on to a next flatConn
// (fasthttp closes a hijacked connection once its hijack handler
// returned), and ends the carrying goroutine.
func (c *flatConn) Close() error {
	if c.handed.Load() {
		return nil
	}
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.next <- handoff{}
	}
	return err
}

// start tells Shutdown that fasthttp counts the connection as open.
func (c *flatConn) start() {
	if c.started.CompareAndSwap(false, true) {
		c.srv.carrying.Add(-1)
	}
}

func (c *flatConn) Read(p []byte) (int, error) {
	c.start()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() == connFresh && !c.state.CompareAndSwap(connFresh, connLive) {
		return 0, net.ErrClosed
	}
	return n, err
}

// SetReadDeadline is fasthttp's. Its first deadline on a connection is the
// header timeout, from the connection's start; on a carried-on connection
// that waits for its next request it is the idle timeout, as between any
// two requests.
func (c *flatConn) SetReadDeadline(t time.Time) error {
	c.start()
	if c.armed.Load() && c.armed.Swap(false) && len(c.pending) == 0 && !t.IsZero() && c.srv.idle > 0 {
		t = time.Now().Add(c.srv.idle)
	}
	return c.Conn.SetReadDeadline(t)
}

// claimIdle closes c if no request has begun on it.
func (c *flatConn) claimIdle() {
	if c.state.CompareAndSwap(connFresh, connClaimed) {
		_ = c.Conn.Close()
	}
}

// flat returns c.
func (c *flatConn) flat() *flatConn { return c }

// flatOf returns the flatConn that c is or wraps (flatTLSConn), nil when
// c is the accepted connection itself.
func flatOf(c net.Conn) *flatConn {
	if f, ok := c.(interface{ flat() *flatConn }); ok {
		return f.flat()
	}
	return nil
}

// flatTLSConn is a flatConn over TLS: fasthttp's IsTLS and
// TLSConnectionState find the TLS connection through it.
type flatTLSConn struct {
	*flatConn
	tls *tls.Conn
}

// Handshake is the TLS connection's.
func (c *flatTLSConn) Handshake() error { return c.tls.Handshake() }

// ConnectionState is the TLS connection's.
func (c *flatTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// baseConn returns the accepted connection under c.
func baseConn(c net.Conn) net.Conn {
	if f := flatOf(c); f != nil {
		c = f.Conn
	}
	if lc, ok := c.(*lazyConn); ok {
		return lc.TCPConn
	}
	return c
}

func (s *Server) getWriter(c net.Conn) *bufio.Writer {
	if w, ok := s.wpool.Get().(*bufio.Writer); ok {
		w.Reset(c)
		return w
	}
	return bufio.NewWriterSize(c, inlineBuffer)
}

func (s *Server) putWriter(w *bufio.Writer) {
	w.Reset(nil)
	s.wpool.Put(w)
}

// claimCarried closes every carried-on connection that waits for its
// first request; the others fasthttp's Shutdown drains.
func (s *Server) claimCarried() {
	s.carryMu.Lock()
	defer s.carryMu.Unlock()
	for fc := range s.carried {
		fc.claimIdle()
	}
}
