package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// fasthttp sets a connection's read deadline twice per request: the idle
// timeout before it waits for the next request, and the header timeout
// once its first byte arrived. On a socket each is a clock read and a
// runtime timer update (about 3% of the gateway's CPU per request), and
// under load the first deadline never passes: the next request comes
// first.
//
// lazyConn keeps the deadline asked for and moves the socket's deadline
// only when the new one is earlier. A later deadline (or none) takes
// effect when the earlier one passes: the read that it interrupts finds
// that the deadline asked for has not, sets that one on the socket, and
// reads on. A read so still ends exactly when the deadline asked for
// passes, and a deadline in the past (cutting a read in flight) still
// interrupts at once; the socket's deadline is moved about once per header
// timeout instead of twice per request.

// LazyDeadlines returns ln with its TCP connections' read deadlines moved
// lazily (see lazyConn), for a listener that TLS wraps before Serve gets
// its connections: tls.Conn sets and reads through it. Serve does the
// same for a plain listener.
func LazyDeadlines(ln net.Listener) net.Listener { return lazyListener{ln} }

// lazyListener hands out its plain TCP connections as lazyConns.
type lazyListener struct{ net.Listener }

func (l lazyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &lazyConn{TCPConn: tc}, nil
	}
	return c, err
}

// lazyConn is a TCP connection whose read deadline is moved lazily.
type lazyConn struct {
	*net.TCPConn

	mu   sync.Mutex
	want time.Time // the read deadline asked for; zero: none
	set  time.Time // the socket's read deadline; zero: none
}

// SetReadDeadline records t; it moves the socket's deadline only when t
// comes before it.
func (c *lazyConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = t
	if t.IsZero() || !c.set.IsZero() && !t.Before(c.set) {
		return nil // none, or later: applied when the socket's passes
	}
	c.set = t
	return c.TCPConn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines on the socket.
func (c *lazyConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want, c.set = t, t
	return c.TCPConn.SetDeadline(t)
}

// Read reads on past a socket deadline that came before the one asked for.
func (c *lazyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.TCPConn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.extend() {
			return n, err
		}
	}
}

// WriteTo copies what is read to w through Read, so that the deadline
// asked for holds: io.Copy would otherwise take the embedded TCPConn's
// WriteTo, which reads the socket directly and stops at its deadline.
func (c *lazyConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

// extend sets the deadline asked for on the socket, whose own has passed;
// it reports false when the deadline asked for has passed too.
func (c *lazyConn) extend() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set.Equal(c.want) || !c.want.IsZero() && !time.Now().Before(c.want) {
		return false
	}
	c.set = c.want
	return c.TCPConn.SetReadDeadline(c.want) == nil
}
