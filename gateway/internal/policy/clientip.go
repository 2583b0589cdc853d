package policy

import (
	"net/http"
	"net/netip"
	"strings"
)

// PeerIP returns the address of the connection's peer (r.RemoteAddr), or the
// zero Addr when it is not an IP address (a Unix socket peer, for one).
// IPv4-mapped IPv6 addresses are unmapped.
func PeerIP(r *http.Request) netip.Addr {
	return parseHostAddr(r.RemoteAddr)
}

// ClientIPFunc returns the client-address rule for Options.ClientIP: the peer
// address, unless trusted reports the peer is a trusted proxy; then the
// X-Forwarded-For entries are read right to left and the first one that is
// not trusted is the client. When every entry is trusted, the left-most is
// the client. An entry that does not parse stops the walk: the last trusted
// address seen is returned, so a forged or broken header can never name an
// arbitrary client. trusted nil trusts nobody.
func ClientIPFunc(trusted func(netip.Addr) bool) func(*http.Request) netip.Addr {
	if trusted == nil {
		return PeerIP
	}
	return func(r *http.Request) netip.Addr {
		addr := PeerIP(r)
		if !addr.IsValid() || !trusted(addr) {
			return addr
		}
		values := r.Header["X-Forwarded-For"]
		for i := len(values) - 1; i >= 0; i-- {
			line := values[i]
			for line != "" {
				var entry string
				if j := strings.LastIndexByte(line, ','); j >= 0 {
					entry, line = line[j+1:], line[:j]
				} else {
					entry, line = line, ""
				}
				hop := parseHostAddr(strings.TrimSpace(entry))
				if !hop.IsValid() {
					return addr
				}
				addr = hop
				if !trusted(hop) {
					return hop
				}
			}
		}
		return addr
	}
}

// TrustPrefixes returns a trust function for ClientIPFunc that trusts the
// addresses inside any of prefixes.
func TrustPrefixes(prefixes []netip.Prefix) func(netip.Addr) bool {
	list := prefixList(prefixes)
	return list.contains
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]:port" or "[ipv6]".
func parseHostAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}
