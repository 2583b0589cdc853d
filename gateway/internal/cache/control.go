package cache

import (
	"strings"
)

// directives are the Cache-Control directives the cache acts on, of a
// request or a response. Ages are in seconds, -1 when absent.
type directives struct {
	noStore, noCache, private, public bool
	mustRevalidate, proxyRevalidate   bool
	onlyIfCached                      bool
	maxAge, sMaxAge                   int64
}

// maxDelta is the largest delta-seconds kept (RFC 9111 section 1.2.2: 2^31).
const maxDelta = 1 << 31

// parseCacheControl reads vs, the lines of a Cache-Control field. Directive names
// are case-insensitive; an unknown directive is ignored. A max-age or
// s-maxage whose value is not delta-seconds, or that is given twice, counts
// as 0 (RFC 9111 section 4.2.1: treat the response as stale). A quoted
// value may hold commas ("private=\"a, b\"").
func parseCacheControl(vs []string) directives {
	d := directives{maxAge: -1, sMaxAge: -1}
	for _, v := range vs {
		for len(v) > 0 {
			var name, val string
			var hasVal bool
			name, val, hasVal, v = nextDirective(v)
			switch strings.ToLower(name) {
			case "no-store":
				d.noStore = true
			case "no-cache":
				d.noCache = true
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "only-if-cached":
				d.onlyIfCached = true
			case "max-age":
				d.maxAge = delta(d.maxAge, val, hasVal)
			case "s-maxage":
				d.sMaxAge = delta(d.sMaxAge, val, hasVal)
			}
		}
	}
	return d
}

// delta parses a delta-seconds value; a bad or repeated one is 0.
func delta(prev int64, val string, hasVal bool) int64 {
	if prev != -1 || !hasVal || val == "" {
		return 0
	}
	var n int64
	for i := 0; i < len(val); i++ {
		c := val[i]
		if c < '0' || c > '9' {
			return 0
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta)
}

// nextDirective splits the first directive off s: its name, its value
// (unquoted) and whether it had one, and the rest of s.
func nextDirective(s string) (name, val string, hasVal bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' {
		i++
	}
	name = strings.TrimSpace(s[:i])
	if i == len(s) || s[i] == ',' {
		return name, "", false, s[i:]
	}
	s = strings.TrimLeft(s[i+1:], " \t")
	if len(s) > 0 && s[0] == '"' {
		var b strings.Builder
		j := 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j < len(s) {
			j++ // the closing quote
		}
		rest = s[j:]
		if k := strings.IndexByte(rest, ','); k >= 0 {
			rest = rest[k:]
		} else {
			rest = ""
		}
		return name, b.String(), true, rest
	}
	j := strings.IndexByte(s, ',')
	if j < 0 {
		j = len(s)
	}
	return name, strings.TrimSpace(s[:j]), true, s[j:]
}
