package h1

import (
	"crypto/tls"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// connInfo is what a request learns from its connection: the same for
// every request on it, so it is worked out once per connection.
type connInfo struct {
	conn net.Conn // the connection it describes
	addr string   // RemoteAddr's string
	tls  *tls.ConnectionState
}

// connInfos caches the connInfo of recent connections, one slot per
// connection id modulo its size. A slot serves a request only when it
// describes that very connection (the net.Conn is compared), so a
// collision costs a recomputation, never another connection's address.
type connInfos [256]atomic.Pointer[connInfo]

// of returns the connInfo of fctx's connection.
func (c *connInfos) of(fctx *fasthttp.RequestCtx) *connInfo {
	conn := fctx.Conn()
	slot := &c[fctx.ConnID()%uint64(len(c))]
	if ci := slot.Load(); ci != nil && ci.conn == conn {
		return ci
	}
	ci := &connInfo{conn: conn, addr: fctx.RemoteAddr().String()}
	if fctx.IsTLS() {
		ci.tls = fctx.TLSConnectionState()
	}
	slot.Store(ci)
	return ci
}
