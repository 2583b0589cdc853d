package admin

import (
	"context"
	"net"
	"net/http"

	"github.com/rs/zerolog"
)

// Log field names naming the process on the other end of the admin socket.
const (
	logPeerUID = "peer_uid"
	logPeerPID = "peer_pid"
)

// peerCred is who is on the other end of a Unix socket connection, as the
// kernel saw it when the connection was made (SO_PEERCRED).
type peerCred struct {
	UID, PID int
}

type peerCredKey struct{}

// withPeerCred is the admin server's http.Server.ConnContext: it reads the
// peer's credentials of a Unix socket connection once, when it is
// accepted, for the request logs. Other connections are left as they are.
func withPeerCred(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	pc, ok := readPeerCred(uc)
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, peerCredKey{}, pc)
}

// logPeer adds who sent r to a log event: the uid and pid of a Unix socket
// peer (its remote address is empty, "@"), else the remote address.
func logPeer(r *http.Request) func(*zerolog.Event) {
	return func(e *zerolog.Event) {
		if r == nil {
			return
		}
		if pc, ok := r.Context().Value(peerCredKey{}).(peerCred); ok {
			e.Int(logPeerUID, pc.UID).Int(logPeerPID, pc.PID)
			return
		}
		e.Str(logRemote, r.RemoteAddr)
	}
}
