package rules

import "strings"

// reservedHeaders are the headers a policy may not name as the carrier of
// an identity (consumerHeader, claimsToHeaders), compared by their CGI name
// (case-insensitive, "_" equal to "-"): hop-by-hop and framing headers,
// which the proxy removes or rewrites, so the identity would never arrive
// or would corrupt the request, and the headers the gateway itself sets
// for the upstream (Host and the forwarding family), which it would
// overwrite.
var reservedHeaders = []string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
	"te", "trailer", "transfer-encoding", "upgrade", "http2-settings",
	"content-length", "host",
	"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
	"x-forwarded-prefix", "x-real-ip", "x-original-url", "x-rewrite-url",
}

// IdentityHeader reports why name cannot carry an identity upstream: it
// must be an HTTP token, and not a header the proxy removes or sets itself.
func IdentityHeader(name string) error {
	if !Token(name) {
		return fail("%q is not a valid header name", name)
	}
	cgi := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	for _, r := range reservedHeaders {
		if cgi == r {
			return fail("%q cannot carry an identity: the gateway removes or sets that header itself (pick a header of your own, such as X-Consumer)", name)
		}
	}
	return nil
}
