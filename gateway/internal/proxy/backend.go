package proxy

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
)

// backend is one weighted upstream of a route.
type backend struct {
	name    string
	fw      *Forwarder
	upTo    int // cumulative weight: chosen when draw < upTo
	hashOn  *schemas.HashOn
	noHost  []byte
	breaker []byte
	metrics atomic.Pointer[backendMetrics]
}

// clientAddr returns the client's address and whether the peer is a
// trusted proxy; behind trusted proxies the client is the right-most
// untrusted address of X-Forwarded-For.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap()
	if !inPrefixes(peer, trusted) {
		return peer, false
	}
	xff := r.Header["X-Forwarded-For"]
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client, true
			}
			client = a.Unmap()
			if !inPrefixes(client, trusted) {
				return client, true
			}
		}
	}
	return client, true
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pickBackend draws the weighted backend, by a hash of the split
// attribute when the route is sticky.
func (rt *Route) pickBackend(r *http.Request) *backend {
	if len(rt.backends) == 1 {
		return rt.backends[0]
	}
	var draw int
	if rt.split != nil {
		client, _ := clientAddr(r, rt.opts.TrustedProxies)
		draw = int(upstream.Key(r, rt.split, client) % 100)
	} else {
		draw = rand.IntN(100)
	}
	for i := range rt.backends {
		if draw < rt.backends[i].upTo {
			return rt.backends[i]
		}
	}
	return rt.backends[len(rt.backends)-1]
}
