package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// Client is who sent one request.
type Client struct {
	// Addr is the client's address: Peer, or behind a trusted proxy the
	// right-most untrusted X-Forwarded-For entry. Zero when the peer is not
	// an IP address (a Unix socket peer).
	Addr netip.Addr
	// Peer is the address of the connection's peer; zero when it is not an
	// IP address.
	Peer netip.Addr
	// PeerHost is the peer as written in X-Forwarded-For: the address part
	// of r.RemoteAddr, in canonical form, or RemoteAddr's host part as it
	// is when that is not an IP address.
	PeerHost string
	// Trusted is true when the peer is a trusted proxy, whose
	// X-Forwarded-* headers are believed.
	Trusted bool
}

// Carrier is implemented by the ResponseWriter of a request whose client
// has already been decided (the runtime's per-request observation), so that
// a handler reads it instead of deciding again.
type Carrier interface {
	Client() *Client
}

// From returns the client carried by w, or decides it from r with trusted
// when w carries none (a handler served on its own, as in tests).
func From(w http.ResponseWriter, r *http.Request, trusted []netip.Prefix) Client {
	if c, ok := w.(Carrier); ok {
		if cl := c.Client(); cl != nil {
			return *cl
		}
	}
	return Of(r, trusted)
}

// Of decides the client of r. trusted lists the proxies whose
// X-Forwarded-For is believed; nil trusts nobody. Behind a trusted peer the
// X-Forwarded-For entries are read right to left and the first one that is
// not trusted is the client; when every entry is trusted, the left-most is.
// An entry that does not parse stops the walk and the last trusted address
// seen is the client, so a forged or broken header can never name an
// arbitrary client. Entries may carry a port ("ip:port", "[ipv6]:port").
// IPv4-mapped IPv6 addresses are unmapped. Of allocates only for a peer
// written in a non-canonical form.
func Of(r *http.Request, trusted []netip.Prefix) Client {
	host, peer := splitPeer(r.RemoteAddr)
	c := Client{Addr: peer, Peer: peer, PeerHost: host}
	if !peer.IsValid() || !contains(trusted, peer) {
		return c
	}
	c.Trusted = true
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
				return c
			}
			c.Addr = hop
			if !contains(trusted, hop) {
				return c
			}
		}
	}
	return c
}

// Peer returns the address of r's connection peer, the zero Addr when it is
// not an IP address.
func Peer(r *http.Request) netip.Addr {
	_, a := splitPeer(r.RemoteAddr)
	return a
}

// splitPeer parses a RemoteAddr ("ip:port", "[ipv6]:port", or anything
// else for a non-IP peer) into the host as it goes into X-Forwarded-For
// and the unmapped address.
func splitPeer(remote string) (string, netip.Addr) {
	host := remote
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		host = trimBrackets(remote[:i])
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return host, netip.Addr{}
	}
	if a.Is4In6() {
		a = a.Unmap()
		return a.String(), a
	}
	if a.Is6() && host != a.String() { // not in canonical form
		return a.String(), a
	}
	return host, a
}

// trimBrackets is strings.Trim(s, "[]") without the set that Trim builds
// on every call: it runs for every request.
func trimBrackets(s string) string {
	for len(s) > 0 && (s[0] == '[' || s[0] == ']') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == '[' || s[len(s)-1] == ']') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]:port" or "[ipv6]". It
// tries the form the text has first, since a failed parse allocates its
// error.
func parseHostAddr(s string) netip.Addr {
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap()
		}
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	return netip.Addr{}
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
