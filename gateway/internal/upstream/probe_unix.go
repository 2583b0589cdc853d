//go:build unix

package upstream

import (
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open and quiet: one
// non-blocking peek that sees neither an end of stream nor unsolicited
// bytes. Anything it cannot check counts as alive; the exchange's own
// stale-connection retry covers the rest.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = true
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil, n >= 0:
			ok = false // closed, reset, or bytes nobody asked for
		}
		return true
	})
	return ok
}
