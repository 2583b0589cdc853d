package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// keyHash is the stored form of an API key; distinctive enough to search.
const keyHash = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

// apiKeyBundle is a valid bundle with an apiKey policy on its route.
func apiKeyBundle(t *testing.T, version string) *schemas.Bundle {
	t.Helper()
	b := bundle(t, version, "http://127.0.0.1:1")
	cfg := b.Config
	cfg.Policies = map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"alice": keyHash}}}}
	r := cfg.Routes["all"]
	r.Policies = []string{"keys"}
	cfg.Routes = map[string]schemas.Route{"all": r}
	cfg.ApplyDefaults()
	nb, err := schemas.NewBundle(version, b.Source, cfg, b.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// TestObserveBundleLeavesOutAPIKeyHashes checks GET /v1/bundle on the
// observe address carries no API-key hash unless asked, while the admin
// socket serves the full bundle, and that the redaction leaves the running
// bundle itself untouched.
func TestObserveBundleLeavesOutAPIKeyHashes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		showSecrets bool
		observeHash bool // the observe address shows the hash
	}{
		{name: "default redacts", observeHash: false},
		{name: "show secrets", showSecrets: true, observeHash: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, func(o *Options) { o.ObserveShowSecrets = tt.showSecrets })
			obs := h.observe(t)
			pushed := apiKeyBundle(t, "v1")
			h.mustPut(t, pushed)
			for _, round := range []string{"first", "cached"} {
				a := get(t, obs, "/v1/bundle", nil)
				if a.code != 200 {
					t.Fatalf("%s observe GET: %d %s", round, a.code, a.body)
				}
				if got := strings.Contains(a.body, keyHash); got != tt.observeHash {
					t.Fatalf("%s observe bundle shows the hash: %v, want %v\n%s", round, got, tt.observeHash, a.body)
				}
				var b schemas.Bundle
				if err := json.Unmarshal([]byte(a.body), &b); err != nil {
					t.Fatal(err)
				}
				keys := b.Config.Policies["keys"].APIKey.Keys
				if _, ok := keys["alice"]; !ok || b.Digest != pushed.Digest || b.Version != "v1" {
					t.Fatalf("observe bundle lost the consumer, digest or version: %+v %s %s", keys, b.Digest, b.Version)
				}
				if !tt.observeHash && keys["alice"] != RedactedValue {
					t.Fatalf("redacted key is %q, want %q", keys["alice"], RedactedValue)
				}
				full := get(t, h.sock, "/v1/bundle", nil)
				if full.code != 200 || !strings.Contains(full.body, keyHash) {
					t.Fatalf("%s admin socket bundle without the hash: %d %s", round, full.code, full.body)
				}
			}
			if err := h.rt.Current().Verify(); err != nil {
				t.Fatalf("running bundle changed by the redaction: %v", err)
			}
		})
	}
}
