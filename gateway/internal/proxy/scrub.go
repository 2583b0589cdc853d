package proxy

import (
	"net/http"
	"net/textproto"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// peerSetHeaders are headers that servers and frameworks read as facts
// about the client or the original request (its address, port, prefix or
// URL) and that only a trusted proxy may set: nginx's X-Real-IP, Spring's
// X-Forwarded-Prefix, IIS's X-Original-URL and X-Rewrite-URL. From any
// other peer they are removed.
var peerSetHeaders = []string{"X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url"}

// forwardingHeaders are the headers whose spellings with "_" (which CGI,
// WSGI and PHP read under the same name) are removed from every request.
var forwardingHeaders = append([]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}, peerSetHeaders...)

// scrubForwarded removes from out the client-sent forwarding headers that
// the peer may not set (all of peerSetHeaders unless trusted) and every
// underscore spelling of a forwarding header, whoever sent it. The direct
// path does not call it: it leaves those out as it copies the header
// (leftOut), which saves a delete per name and a walk over the header.
func scrubForwarded(out http.Header, trusted bool) {
	if !trusted {
		for _, h := range peerSetHeaders {
			delete(out, h)
		}
	}
	headers.DeleteAliases(out, forwardingHeaders)
}

// isPeerSet reports one of peerSetHeaders.
func isPeerSet(k string) bool {
	switch k {
	case "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url":
		return true
	}
	return false
}

// isForwardingAlias reports an underscore spelling of a forwarding header,
// which scrubForwarded removes.
func isForwardingAlias(k string) bool { return headers.IsAlias(k, forwardingHeaders) }

// scrubSwitching removes the hop-by-hop headers of an upstream's 101
// answer, which ReverseProxy copies to the client as they are: the headers
// its Connection names and the other hop-by-hop ones (isHop), but
// Connection and Upgrade, which are the handshake itself. Connection is
// left as "Upgrade", Upgrade as the upstream sent it.
func scrubSwitching(h http.Header) {
	for opt := range headers.ConnectionOptions(h["Connection"]) {
		if name := textproto.CanonicalMIMEHeaderKey(opt); name != "Upgrade" && name != "Connection" {
			delete(h, name)
		}
	}
	for k := range h {
		if isHop(k) && k != "Upgrade" && k != "Connection" {
			delete(h, k)
		}
	}
	h["Connection"] = []string{"Upgrade"}
}
