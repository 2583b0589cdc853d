package h1

import (
	"net/url"
	"strings"
)

// parseOriginForm fills u as url.ParseRequestURI would for the common
// origin-form target ("/path?query") whose path needs no unescaping and
// holds nothing that url.URL.EscapedPath would escape: u.Path is the path
// as sent, u.RawQuery the query. It reports false, leaving the target to
// url.ParseRequestURI, for anything else (a "%", a byte outside the set
// below, a control byte in the query, another form of target), so that
// every target gets the URL net/http would give it; FuzzParseOriginForm
// holds the two to the same result. It saves the URL's allocation and
// url.parse's work on every request.
func parseOriginForm(s string, u *url.URL) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(s, "?")
	for i := 0; i < len(path); i++ {
		if !pathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	if hasQuery && query == "" {
		u.ForceQuery = true // "/p?": as url.ParseRequestURI
	}
	return true
}

// pathByte holds the bytes a path keeps as they are in url.URL: letters,
// digits, "-._~" and the reserved "$&+,/:;=@" (net/url escapes "?" alone of
// those in a path).
var pathByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()
