package policy

import (
	"net/http"
	"net/netip"

	"github.com/gitgate/gitgate/gateway/internal/clientip"
)

// clientAddr returns the client address of r: the one the runtime decided
// for the request when w carries it (clientip.Carrier), otherwise
// fallback's (Options.ClientIP, for a Set served on its own).
func clientAddr(w http.ResponseWriter, r *http.Request, fallback func(*http.Request) netip.Addr) netip.Addr {
	if c, ok := w.(clientip.Carrier); ok {
		if cl := c.Client(); cl != nil {
			return cl.Addr
		}
	}
	return fallback(r)
}
