package schemas

import "time"

// RouteCache is a route's response cache. The gateway stores responses as a
// shared cache (RFC 9111): it honours Cache-Control, Vary and
// Authorization, and stores only what a response allows.
type RouteCache struct {
	// TTL is how long a response that carries no freshness of its own
	// (max-age, s-maxage or Expires) is fresh, for the status codes that
	// RFC 9110 makes heuristically cacheable. 0: only responses with
	// their own freshness are stored.
	TTL Duration `json:"ttl,omitempty"`
	// MaxTTL caps every freshness lifetime, the response's own too.
	// Default 24h.
	MaxTTL Duration `json:"maxTtl,omitempty"`
	// Methods served from the cache: GET and HEAD (a HEAD is answered from
	// a stored GET). Default [GET, HEAD].
	Methods []string `json:"methods,omitempty"`
	// Key chooses what, besides host and path, tells two requests apart.
	// Nil: the whole query string.
	Key *CacheKey `json:"key,omitempty"`
	// MaxEntryBytes is the largest body stored; a larger response is
	// streamed to the client and not kept. Default 1 MiB.
	MaxEntryBytes int64 `json:"maxEntryBytes,omitempty"`
}

// CacheKey is what tells two requests of a route apart in its cache.
type CacheKey struct {
	// Headers are request headers whose values join the key.
	Headers []string `json:"headers,omitempty"`
	// Query lists the query parameters that join the key, in the key's
	// order; the others are ignored. Nil: the whole query string as sent;
	// empty: no query at all (omitzero keeps the difference in a bundle).
	Query []string `json:"query,omitzero"`
}

// Defaults of a route's cache.
const (
	DefaultCacheMaxTTL        = 24 * time.Hour
	DefaultCacheMaxEntryBytes = 1 << 20
)

func (c *RouteCache) applyDefaults() {
	setDur(&c.MaxTTL, DefaultCacheMaxTTL)
	if len(c.Methods) == 0 {
		c.Methods = []string{"GET", "HEAD"}
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = DefaultCacheMaxEntryBytes
	}
}
