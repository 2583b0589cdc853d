package policy

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// BenchmarkChain measures the per-request cost of policies in front of a
// handler that does nothing: a bare route, each policy alone, and the
// apiKey + rateLimit chain.
func BenchmarkChain(b *testing.B) {
	policies := map[string]schemas.Policy{
		"keys": {APIKey: &schemas.APIKey{
			Keys:           map[string]string{"alice": hashKey(aliceKey), "bob": hashKey(bobKey), "carol": hashKey("carol-key")},
			ConsumerHeader: "X-Consumer",
		}},
		"rl": {RateLimit: &schemas.RateLimit{Rate: 1e9, Key: "header:X-Consumer"}},
		"ip": {RateLimit: &schemas.RateLimit{Rate: 1e9}},
	}
	for _, bc := range []struct {
		name   string
		attach []string
	}{
		{name: "bare"},
		{name: "apiKey", attach: []string{"keys"}},
		{name: "rateLimit-client_ip", attach: []string{"ip"}},
		{name: "apiKey+rateLimit", attach: []string{"keys", "rl"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := routeCfg(policies, bc.attach...)
			cfg.ApplyDefaults()
			set, err := Compile(cfg, nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			h := set.Wrap("r", bc.attach, okHandler)
			key := []string{aliceKey}
			r := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Header: http.Header{}, RemoteAddr: "192.0.2.1:4711"}
			var w statusWriter
			b.ReportAllocs()
			for b.Loop() {
				r.Header["X-Api-Key"] = key
				h.ServeHTTP(&w, r)
			}
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}
