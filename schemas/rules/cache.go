package rules

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/gitgate/gitgate/schemas"
)

// RouteCache checks a route's response cache: methods GET or HEAD, ttl not
// above maxTtl, and key headers the cache may vary on. c may be defaulted
// or not.
func RouteCache(c schemas.RouteCache) []Violation {
	var out []Violation
	for i, m := range c.Methods {
		if m != http.MethodGet && m != http.MethodHead {
			out = append(out, violation(fmt.Sprintf(".cache.methods[%d]", i), "method %q cannot be cached: use GET or HEAD", m))
		}
	}
	if slices.Contains(c.Methods, http.MethodHead) && !slices.Contains(c.Methods, http.MethodGet) {
		out = append(out, violation(".cache.methods", "HEAD is answered from stored GET responses: list GET too"))
	}
	if most := or(c.MaxTTL, schemas.DefaultCacheMaxTTL); c.TTL.D() > most {
		out = append(out, violation(".cache.ttl", "ttl %s is longer than maxTtl %s", c.TTL.D(), most))
	}
	if c.MaxEntryBytes < 0 {
		out = append(out, violation(".cache.maxEntryBytes", "maxEntryBytes %d is negative", c.MaxEntryBytes))
	}
	if k := c.Key; k != nil {
		for i, h := range k.Headers {
			if !Token(h) {
				out = append(out, violation(fmt.Sprintf(".cache.key.headers[%d]", i), "%q is not a valid header name", h))
			} else if slices.Contains(uncacheableKeyHeaders, http.CanonicalHeaderKey(h)) {
				out = append(out, violation(fmt.Sprintf(".cache.key.headers[%d]", i), "header %q cannot be part of the cache key: the cache keeps no per-caller responses to requests with Authorization and does not cache Range requests", h))
			}
		}
	}
	return out
}

// uncacheableKeyHeaders are request headers whose requests the cache never
// answers, so keying on them would only split the cache.
var uncacheableKeyHeaders = []string{"Authorization", "Range"}
