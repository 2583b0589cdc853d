package runtime

import (
	"net/http"
	"slices"

	"github.com/gitgate/gitgate/gateway/internal/cache"
	"github.com/gitgate/gitgate/gateway/internal/proxy"
	"github.com/gitgate/gitgate/schemas"
)

// credentialsOf returns where the identity policies named by a route read
// their credentials, so that its response cache treats a request carrying
// one like an Authorization request. cfg is defaulted.
func credentialsOf(cfg *schemas.Config, names []string) cache.Credentials {
	var c cache.Credentials
	for _, n := range names {
		p, ok := cfg.Policies[n]
		if !ok {
			continue
		}
		if k := p.APIKey; k != nil && k.Name != "" {
			if k.In == "query" {
				c.Query = append(c.Query, k.Name)
			} else {
				c.Headers = append(c.Headers, http.CanonicalHeaderKey(k.Name))
			}
		}
		if j := p.JWT; j != nil && j.Header != "" && http.CanonicalHeaderKey(j.Header) != "Authorization" {
			c.Headers = append(c.Headers, http.CanonicalHeaderKey(j.Header))
		}
	}
	slices.Sort(c.Headers)
	slices.Sort(c.Query)
	c.Headers, c.Query = slices.Compact(c.Headers), slices.Compact(c.Query)
	if !c.Empty() {
		c.Seen = proxy.Credentialed
	}
	return c
}

// markCredentials runs in front of a cached route's policies: a request
// that carries one of creds' credentials is marked on its Observation
// before the policies strip it, for the cache inside them.
func markCredentials(creds cache.Credentials, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if creds.Carries(r) {
			proxy.MarkCredentialed(w)
		}
		next.ServeHTTP(w, r)
	})
}
