package rules

import "strings"

// Upgrade reports why token cannot be listed in Route.Upgrades: it must be
// an HTTP token (protocol names such as "websocket" or "HTTP/2.0" are), and
// it must not be "h2c", which would tunnel HTTP/2 requests past every route
// and policy.
func Upgrade(token string) error {
	if token == "" {
		return fail("an upgrade protocol name is empty")
	}
	if !isToken(token, "/") { // protocol names carry a version: "HTTP/2.0"
		return fail("upgrade protocol %q is not an HTTP token", token)
	}
	if strings.EqualFold(token, "h2c") {
		return fail("upgrade protocol %q is never allowed: HTTP/2 tunnelled over an upgrade would bypass routes and policies (serve HTTP/2 with TLS or the gateway's h2c listener instead)", token)
	}
	return nil
}

// Token reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// syntax of header names and methods.
func Token(s string) bool { return isToken(s, "") }

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2),
// also allowing the bytes of extra.
func isToken(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
