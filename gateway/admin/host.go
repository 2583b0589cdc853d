package admin

import (
	"net/http"
	"strings"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas/rebinding"
)

// hostCheck guards a TCP address against DNS rebinding: a web page whose
// name an attacker re-points at this address sends that name as Host, so
// only IP literals, localhost and the configured names are served.
type hostCheck struct {
	any   bool
	names map[string]bool // lower case, without port
}

func newHostCheck(allowed []string) *hostCheck {
	hc := &hostCheck{names: map[string]bool{"localhost": true}}
	for _, h := range allowed {
		h = strings.ToLower(strings.TrimSpace(h))
		switch h {
		case "":
		case "*":
			hc.any = true
		default:
			hc.names[h] = true
		}
	}
	return hc
}

// allows reports whether a request with Host host may be served. An empty
// Host (HTTP/1.0) is allowed: browsers always send one.
func (hc *hostCheck) allows(host string) bool {
	return hc.any || rebinding.HostAllowed(host, hc.names)
}

// wrap answers 421 Misdirected Request to a Host that is not allowed.
func (hc *hostCheck) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hc.allows(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, client.ErrorBody{
				Error: "host not allowed on the observe address; see --observe-allowed-hosts",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}
