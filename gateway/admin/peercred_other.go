//go:build !linux

package admin

import "net"

// readPeerCred knows no peer credentials outside Linux; logs fall back to
// the remote address.
func readPeerCred(*net.UnixConn) (peerCred, bool) { return peerCred{}, false }
