package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/h1"
)

// HTTP/1.1 servers of Config.HTTP1Server.
const (
	// HTTP1Net serves HTTP/1.1 with net/http, as HTTP/2.
	HTTP1Net = "net"
	// HTTP1Fast serves HTTP/1.1 with fasthttp (gateway/internal/h1) and
	// HTTP/2 with net/http: over TLS each connection goes to the server
	// of the protocol ALPN chose. With --h2c, where a connection's
	// protocol is only known from its first bytes, net/http serves both.
	// The default: every framing, smuggling, header and path test of this
	// package passes over it (stricter where the two differ), and it
	// served about 20% more requests per second than net/http in the
	// same benchmark runs.
	HTTP1Fast = "fasthttp"
)

// DefaultHTTP1Server is Config.HTTP1Server's default.
const DefaultHTTP1Server = HTTP1Fast

// handshakeTimeout bounds a TLS handshake before its connection is handed
// to the server of its protocol.
const handshakeTimeout = 10 * time.Second

// dataPlane is the data plane's server or servers: net/http always (HTTP/2,
// h2c, and HTTP/1.1 unless fast), fasthttp for HTTP/1.1 when fast is set.
type dataPlane struct {
	net  *http.Server
	fast *h1.Server
	tls  *tls.Config
	errs *log.Logger

	mu     sync.Mutex
	splits []*alpnSplit
}

// useFast reports whether fasthttp serves HTTP/1.1 for cfg.
func useFast(cfg *Config) bool { return cfg.HTTP1Server == HTTP1Fast && !cfg.H2C }

// serve serves l until shutdown: net/http alone, fasthttp alone on a plain
// listener, or both behind an ALPN split on a TLS one.
func (d *dataPlane) serve(l net.Listener) error {
	switch {
	case d.fast == nil && d.tls != nil:
		return d.net.ServeTLS(l, "", "")
	case d.fast == nil:
		return d.net.Serve(l)
	case d.tls == nil:
		return d.fast.Serve(l)
	}
	// Under TLS, so that fasthttp's two read deadlines per request move
	// the socket's only when they must (HTTP/2's deadlines go through it
	// too, unchanged in effect).
	sp := newALPNSplit(tls.NewListener(h1.LazyDeadlines(l), d.tls), d.errs)
	d.mu.Lock()
	d.splits = append(d.splits, sp)
	d.mu.Unlock()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- d.net.Serve(sp.h2) })
	wg.Go(func() { errc <- d.fast.Serve(sp.h1) })
	wg.Go(func() { errc <- sp.run() })
	err := <-errc
	_ = sp.Close()
	wg.Wait()
	select {
	case <-sp.done:
		if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
			return http.ErrServerClosed
		}
	default:
	}
	return err
}

// http1 names the server of HTTP/1.1.
func (d *dataPlane) http1() string {
	if d.fast != nil {
		return HTTP1Fast
	}
	return HTTP1Net
}

// setKeepAlives turns keep-alives on or off on every server.
func (d *dataPlane) setKeepAlives(on bool) {
	d.net.SetKeepAlivesEnabled(on)
	if d.fast != nil {
		d.fast.SetKeepAlivesEnabled(on)
	}
}

// shutdown stops accepting and drains both servers.
func (d *dataPlane) shutdown(ctx context.Context) error {
	d.mu.Lock()
	for _, sp := range d.splits {
		_ = sp.Close()
	}
	d.mu.Unlock()
	var errs []error
	if d.fast != nil {
		if err := d.fast.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.net.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// close closes net/http's connections after a shutdown that timed out.
func (d *dataPlane) close() error { return d.net.Close() }

// alpnSplit accepts TLS connections, completes each handshake in its own
// goroutine and hands the connection to h2 when ALPN chose "h2", else to
// h1.
type alpnSplit struct {
	ln     net.Listener
	h1, h2 *chanListener
	errs   *log.Logger
	wg     sync.WaitGroup
	once   sync.Once
	done   chan struct{}
}

func newALPNSplit(ln net.Listener, errs *log.Logger) *alpnSplit {
	done := make(chan struct{})
	return &alpnSplit{ln: ln, errs: errs, done: done,
		h1: &chanListener{addr: ln.Addr(), c: make(chan net.Conn), done: done},
		h2: &chanListener{addr: ln.Addr(), c: make(chan net.Conn), done: done}}
}

// run accepts until Close; it waits for the handshakes it started.
func (s *alpnSplit) run() error {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return http.ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting TLS connections: %w", err)
		}
		s.wg.Go(func() { s.hand(c) })
	}
}

func (s *alpnSplit) hand(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		_ = c.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if s.errs != nil {
			s.errs.Printf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
		}
		_ = c.Close()
		return
	}
	to := s.h1
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		to = s.h2
	}
	select {
	case to.c <- c:
	case <-s.done:
		_ = c.Close()
	}
}

// Close stops accepting; the servers' Accept then fail.
func (s *alpnSplit) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.ln.Close()
	})
	return err
}

// chanListener is the listener of one side of an alpnSplit.
type chanListener struct {
	addr net.Addr
	c    chan net.Conn
	done chan struct{}
}

// Accept returns the next connection of this side.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: the split closes both sides.
func (l *chanListener) Close() error { return nil }

// Addr is the TLS listener's address.
func (l *chanListener) Addr() net.Addr { return l.addr }
