package upstream

import (
	"net/http"

	"github.com/gitgate/gitgate/schemas"
)

// setProtocol makes tr speak the upstream's protocol. http1 (and unset)
// leaves tr as it is: HTTP/1.1 with keep-alive. h2 speaks HTTP/2 only,
// negotiated by ALPN over TLS, with the TLS settings of tr's
// TLSClientConfig (nil: the system roots). h2c speaks HTTP/2 without TLS
// by prior knowledge, as gRPC servers without TLS expect. An HTTP/2
// transport streams request and response bodies at once (gRPC
// bidirectional calls) and passes trailers through.
func setProtocol(tr *http.Transport, protocol string) {
	var p http.Protocols
	switch protocol {
	case schemas.ProtocolH2:
		p.SetHTTP2(true)
	case schemas.ProtocolH2C:
		p.SetUnencryptedHTTP2(true)
	default:
		return
	}
	tr.Protocols = &p
}

// fastPath reports whether the HTTP/1.1 fast path may serve the pool's
// http:// targets: for http1, not for h2 and h2c, whose requests all go
// through the pool's http.Transport.
func fastPath(protocol string) bool {
	return protocol == "" || protocol == schemas.ProtocolHTTP1
}
