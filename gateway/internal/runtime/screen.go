package runtime

import (
	"net/http"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/gateway/internal/router"
	"github.com/gitgate/gitgate/schemas"
)

// Answers of the request screening.
var (
	bodyMethod      = reply.New("method_not_allowed", "method not allowed: the gateway does not proxy CONNECT or TRACE", "")
	bodyDotParams   = reply.New("bad_path", msgBadPath+": a dot segment with ';' parameters", "")
	bodyDoubleEnc   = reply.New("bad_path", msgBadPath+": a percent-encoded '.', '/' or '\\' after decoding (double encoding)", "")
	bodyEncodedDot  = reply.New("bad_path", msgBadPath+": a percent-encoded '.' (%2e) that is not a dot segment", "")
	bodyPathParams  = reply.New("bad_path", msgBadPath+": ';' path parameters are not allowed on this route", "")
	bodyUpgrade     = reply.New("upgrade_not_allowed", "upgrade not allowed: the route does not allow switching to this protocol", "")
	allowedMethods  = []string{"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
	refusedMethods  = map[string]bool{http.MethodConnect: true, http.MethodTrace: true}
	upgradeHopNames = []string{"Upgrade", "Http2-Settings"}
)

// screen applies the rules that hold for every request, before routing. It
// answers and returns false for a request it refuses:
//   - CONNECT (a tunnel to any host:port the gateway can reach) and TRACE
//     (which echoes the request, credentials included): 405 with Allow.
//   - a dot segment carrying ';' parameters ("/pub/..;/priv"), which Tomcat,
//     Jetty and Spring resolve as ".." after the gateway chose a route by
//     the literal segment: 400.
//   - a percent-encoded dot ("%2e") that survives normalization: the
//     gateway resolves "/pub/%2e%2e/priv" to "/priv" and forwards that, but
//     keeps the client's escaping of a path that needs no cleaning, so
//     "/pub/%2e%2e;/x" or "/pub/x%2e" would reach the upstream encoded,
//     for it to decode after its own dot-segment handling. "." never
//     needs escaping (Spring Security's strict firewall refuses it too): 400.
//   - a decoded path that still holds "%2e", "%2f" or "%5c" (a double-encoded
//     dot, slash or backslash), which an upstream decoding once more reads
//     as a path the gateway never saw: 400.
//
// It also removes the headers that the client's Connection header names,
// so that the proxy's hop-by-hop removal, which runs after the policies,
// cannot drop a header a policy has set.
func screen(w http.ResponseWriter, r *http.Request) bool {
	if refusedMethods[r.Method] {
		w.Header()["Allow"] = allowedMethods
		reply.Write(w, http.StatusMethodNotAllowed, bodyMethod)
		return false
	}
	if body := checkPath(r.URL.Path, r.URL.RawPath); body != nil {
		reply.Write(w, http.StatusBadRequest, body)
		return false
	}
	headers.StripConnectionListed(r.Header)
	return true
}

// checkPath returns the answer to a path screen refuses, nil when the path
// is fine; p is the decoded path, raw its escaped form when it differs from
// the default escaping (url.URL.RawPath). A path with neither ';' nor '%'
// costs two byte scans.
func checkPath(p, raw string) *reply.Body {
	if hasEscape(raw, "2e") {
		if clean, _ := router.CleanPath(p); clean == p {
			return bodyEncodedDot // normalizePath would forward raw as it is
		}
	}
	if hasEscape(p, "2e", "2f", "5c") {
		return bodyDoubleEnc
	}
	if strings.IndexByte(p, ';') < 0 {
		return nil
	}
	for seg := range strings.SplitSeq(p, "/") {
		if name, _, params := strings.Cut(seg, ";"); params && (name == "." || name == "..") {
			return bodyDotParams
		}
	}
	return nil
}

// routeGuard refuses what one route does not allow, before its policies
// run: ';' path parameters unless the route allows them, and a protocol
// switch to a protocol the route does not list. An "h2c" upgrade is never
// forwarded: it is dropped and the request served as HTTP/1.1, as a server
// may ignore Upgrade (RFC 9110 section 7.8) and as Envoy does.
type routeGuard struct {
	next        http.Handler
	allowParams bool
	upgrades    []string
}

// guardRoute returns next behind the route's guard. The upgrade list was
// checked with the route (rules.Route, in proxy.NewRoute).
func guardRoute(spec schemas.Route, next http.Handler) http.Handler {
	return &routeGuard{next: next, allowParams: spec.AllowPathParameters, upgrades: spec.Upgrades}
}

// ServeHTTP checks r against the route's rules and serves it with next.
func (g *routeGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.allowParams && strings.IndexByte(r.URL.Path, ';') >= 0 {
		reply.Write(w, http.StatusBadRequest, bodyPathParams)
		return
	}
	if len(r.Header["Upgrade"]) > 0 && !g.upgrade(r.Header) {
		reply.Write(w, http.StatusForbidden, bodyUpgrade)
		return
	}
	g.next.ServeHTTP(w, r)
}

// upgrade edits the Upgrade header of h down to what may be forwarded and
// reports whether the request may go on. Without "upgrade" in Connection,
// Upgrade means nothing and the proxy drops it. h2c offers are removed;
// when nothing is left, so is the switch (Upgrade, HTTP2-Settings and the
// "upgrade" option of Connection). Any other protocol must be listed.
func (g *routeGuard) upgrade(h http.Header) bool {
	if !hasToken(h["Connection"], "upgrade") {
		return true
	}
	var keep []string
	dropped := false
	for _, v := range h["Upgrade"] {
		for proto := range strings.SplitSeq(v, ",") {
			proto = strings.TrimSpace(proto)
			if proto == "" {
				continue
			}
			name, _, _ := strings.Cut(proto, "/")
			if strings.EqualFold(name, "h2c") {
				dropped = true
				continue
			}
			if !containsFold(g.upgrades, name) && !containsFold(g.upgrades, proto) {
				return false
			}
			keep = append(keep, proto)
		}
	}
	switch {
	case len(keep) == 0:
		headers.DeleteAllOf(h, upgradeHopNames)
		delete(h, "Connection")
	case dropped:
		h["Upgrade"] = []string{strings.Join(keep, ", ")}
		headers.DeleteAll(h, "Http2-Settings")
	}
	return true
}

func hasToken(vals []string, token string) bool {
	for _, v := range vals {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), token) {
				return true
			}
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// hasEscape reports whether s holds a percent-escape of one of codes (two
// lower-case hex digits), in either case.
func hasEscape(s string, codes ...string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		hex := s[i+1 : i+3]
		for _, c := range codes {
			if strings.EqualFold(hex, c) {
				return true
			}
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}
