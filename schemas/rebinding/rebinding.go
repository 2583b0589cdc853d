// Package rebinding holds the one Host check that read-only HTTP endpoints
// reachable over the network (the gateway's observe address, the agent's
// GET /v1/replica) use against DNS rebinding: a web page whose name an
// attacker points at such an address sends that name as Host, so only IP
// literals and names the operator listed are served.
package rebinding

import (
	"net"
	"net/netip"
	"strings"
)

// HostAllowed reports whether a request whose Host header is host may be
// served: an empty Host (HTTP/1.0; browsers always send one), an IP
// literal (rebinding needs a name) or, compared without case, port, IPv6
// brackets or a trailing dot, one of names, whose keys are lower case.
func HostAllowed(host string, names map[string]bool) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return names[strings.ToLower(host)]
}
