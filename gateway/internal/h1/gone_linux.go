package h1

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer of c has closed its side: a peek
// (which consumes nothing, so fasthttp's reader and a pipelined request
// are untouched) finds the end of the stream. Only a plain TCP connection
// is checked; for TLS a close_notify is data, so it reports false.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	if _, tcp := c.(*net.TCPConn); !tcp {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil
		return true // never wait for readiness
	})
	return closed
}
