//go:build unix

package upstream

import (
	"net"
	"syscall"
)

// canProbe says that idle connections can be checked without blocking,
// which the fast path's connection reuse needs.
const canProbe = true

// prober checks an idle connection before reuse. It is made once per
// connection, so that a check allocates nothing.
type prober struct {
	raw   syscall.RawConn
	fn    func(fd uintptr) bool // p.peek, as a method value made once
	quiet bool
	buf   [1]byte
}

func newProber(c net.Conn) *prober {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{raw: raw}
	p.fn = p.peek
	return p
}

// alive reports whether an idle connection is still open and quiet: one
// non-blocking peek that sees neither an end of stream nor unsolicited
// bytes. A connection that cannot be checked does not count as alive.
func (p *prober) alive() bool {
	if p == nil {
		return false
	}
	p.quiet = false
	if err := p.raw.Read(p.fn); err != nil {
		return false
	}
	return p.quiet
}

// peek always returns true: false would make the runtime wait for the
// connection to become readable.
func (p *prober) peek(fd uintptr) bool {
	for {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			p.quiet = true // nothing to read: open and quiet
		case err != nil, n >= 0:
			// Closed (n == 0), reset, or bytes that no request asked for.
		}
		return true
	}
}
