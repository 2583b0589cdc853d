package proxy

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/gateway/internal/traffic"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
)

// backend is one weighted upstream of a route.
type backend struct {
	name    string
	fw      *Forwarder
	upTo    int // cumulative weight: chosen when draw < upTo
	hashOn  *schemas.HashOn
	noHost  *reply.Body
	breaker *reply.Body
	failed  *reply.Body // 503 passed on from the upstream after retries
	traffic *traffic.Backend
	metrics atomic.Pointer[backendMetrics]
}

// pickBackend draws the weighted backend, by a hash of the split
// attribute when the route is sticky; client is the request's client.
func (rt *Route) pickBackend(r *http.Request, client netip.Addr) *backend {
	if len(rt.backends) == 1 {
		return rt.backends[0]
	}
	var draw int
	if rt.split != nil {
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
