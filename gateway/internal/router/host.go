package router

import (
	"net/url"
	"strings"
)

// canonicalHost returns h without port, IPv6 brackets or trailing dot, in
// lower case. It allocates only when h has upper-case letters.
func canonicalHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i] // one colon: host:port; more: a bare IPv6 address
	}
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}

// queryMatches reports whether one value of the query parameter m.name in
// raw matches m. It parses raw the way url.ParseQuery does (pairs with a
// semicolon or a bad escape are skipped) without building a map, and
// allocates only to unescape a key or value that is escaped. Like
// url.ParseQuery, it refuses a query of more than maxQueryParams parameters:
// no query matcher holds on it.
func queryMatches(raw string, m *valueMatcher) bool {
	if strings.Count(raw, "&") >= maxQueryParams {
		return false
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		key, val, _ := strings.Cut(pair, "=")
		if needsUnescape(key) {
			k, err := url.QueryUnescape(key)
			if err != nil {
				continue
			}
			key = k
		}
		if key != m.name {
			continue
		}
		if needsUnescape(val) {
			v, err := url.QueryUnescape(val)
			if err != nil {
				continue
			}
			val = v
		}
		if m.matches(val) {
			return true
		}
	}
	return false
}

// maxQueryParams is net/url's default limit on query parameters.
const maxQueryParams = 10000

func needsUnescape(s string) bool {
	return strings.ContainsAny(s, "%+")
}
