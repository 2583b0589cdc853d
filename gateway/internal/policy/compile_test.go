package policy

import (
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gitgate/gitgate/schemas"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	const shortSecret = "tooShort-s3cr3t"
	lookup := env(map[string]string{"SHORT": shortSecret, "EMPTY": ""})
	readFile := func(p string) ([]byte, error) {
		if p == "/run/jwks.json" {
			return []byte("{not json"), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	jwtHS := func(ref *schemas.SecretRef) schemas.Policy {
		return schemas.Policy{JWT: &schemas.JWT{Algorithms: []string{"HS256"}, Secret: ref}}
	}
	tests := []struct {
		name     string
		policies map[string]schemas.Policy
		attach   []string
		path     string
		msg      string
	}{
		{name: "missing env secret", policies: map[string]schemas.Policy{"auth": jwtHS(&schemas.SecretRef{Env: "GITGATE_JWT_SECRET"})},
			path: "policies.auth.jwt.secret", msg: "env GITGATE_JWT_SECRET is not set"},
		{name: "empty env secret", policies: map[string]schemas.Policy{"auth": jwtHS(&schemas.SecretRef{Env: "EMPTY"})},
			path: "policies.auth.jwt.secret", msg: "env EMPTY is empty"},
		{name: "missing file secret", policies: map[string]schemas.Policy{"auth": jwtHS(&schemas.SecretRef{File: "/run/nope"})},
			path: "policies.auth.jwt.secret", msg: "reading file /run/nope"},
		{name: "short secret names the reference, not the value", policies: map[string]schemas.Policy{"auth": jwtHS(&schemas.SecretRef{Env: "SHORT"})},
			path: "policies.auth.jwt.secret", msg: "the secret from env:SHORT is 15 bytes"},
		{name: "HS256 without secret", policies: map[string]schemas.Policy{"auth": jwtHS(nil)},
			path: "policies.auth.jwt.algorithms", msg: "HS256 needs secret"},
		{name: "unsupported algorithm", policies: map[string]schemas.Policy{"auth": {JWT: &schemas.JWT{Algorithms: []string{"none"}}}},
			path: "policies.auth.jwt.algorithms[0]", msg: `"none" is not supported`},
		{name: "RS256 without keys", policies: map[string]schemas.Policy{"auth": {JWT: &schemas.JWT{Algorithms: []string{"RS256"}}}},
			path: "policies.auth.jwt.algorithms", msg: "need jwks, jwksRef or jwksURL"},
		{name: "short RSA key", policies: map[string]schemas.Policy{"auth": {JWT: &schemas.JWT{Algorithms: []string{"RS256"},
			JWKS: &schemas.JWKS{Keys: []schemas.JWK{{Kty: "RSA", N: b64([]byte{0xc3, 0x01}), E: "AQAB"}}}}}},
			path: "policies.auth.jwt.jwks.keys[0]", msg: "at least 2048"},
		{name: "EC point off the curve", policies: map[string]schemas.Policy{"auth": {JWT: &schemas.JWT{Algorithms: []string{"ES256"},
			JWKS: &schemas.JWKS{Keys: []schemas.JWK{{Kty: "EC", Crv: "P-256", X: b64(make([]byte, 32)), Y: b64(make([]byte, 32))}}}}}},
			path: "policies.auth.jwt.jwks.keys[0]", msg: "EC point"},
		{name: "JWKS reference not JSON", policies: map[string]schemas.Policy{"auth": {JWT: &schemas.JWT{Algorithms: []string{"ES256"},
			JWKSRef: &schemas.SecretRef{File: "/run/jwks.json"}}}},
			path: "policies.auth.jwt.jwksRef", msg: "file:/run/jwks.json is not a JWKS"},
		{name: "clear API key", policies: map[string]schemas.Policy{"k": {APIKey: &schemas.APIKey{Keys: map[string]string{"bob": "hunter2-clear-key"}}}},
			path: "policies.k.apiKey.keys.bob", msg: "never the key itself"},
		{name: "API key in cookie", policies: map[string]schemas.Policy{"k": {APIKey: &schemas.APIKey{In: "cookie", Keys: map[string]string{"bob": hashKey("x")}}}},
			path: "policies.k.apiKey.in", msg: `"header" or "query"`},
		{name: "zero rate", policies: map[string]schemas.Policy{"rl": {RateLimit: &schemas.RateLimit{Rate: 0}}},
			path: "policies.rl.rateLimit.rate", msg: "positive"},
		{name: "bad rate key", policies: map[string]schemas.Policy{"rl": {RateLimit: &schemas.RateLimit{Rate: 1, Key: "cookie:x"}}},
			path: "policies.rl.rateLimit.key", msg: `"header:NAME"`},
		{name: "bad CIDR", policies: map[string]schemas.Policy{"ip": {IPAllow: &schemas.IPList{CIDRs: []string{"10.0.0.0/33"}}}},
			path: "policies.ip.ipAllow.cidrs[0]", msg: "neither a CIDR"},
		{name: "CORS star with credentials", policies: map[string]schemas.Policy{"c": {CORS: &schemas.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}}},
			path: "policies.c.cors.allowCredentials", msg: "allowOrigins \"*\""},
		{name: "CORS origin with a path", policies: map[string]schemas.Policy{"c": {CORS: &schemas.CORS{AllowOrigins: []string{"https://a.test/x"}}}},
			path: "policies.c.cors.allowOrigins[0]", msg: "not an origin"},
		{name: "CORS wildcard in the middle", policies: map[string]schemas.Policy{"c": {CORS: &schemas.CORS{AllowOrigins: []string{"https://a.*.test"}}}},
			path: "policies.c.cors.allowOrigins[0]", msg: "not a wildcard origin"},
		{name: "two kinds in one policy", policies: map[string]schemas.Policy{"two": {IPAllow: &schemas.IPList{CIDRs: []string{"10.0.0.0/8"}}, IPDeny: &schemas.IPList{CIDRs: []string{"10.0.0.0/8"}}}},
			path: "policies.two", msg: "split it into 2 policies"},
		{name: "route names an unknown policy", policies: map[string]schemas.Policy{}, attach: []string{"ghost"},
			path: "routes.r.policies[0]", msg: `unknown policy "ghost"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := routeCfg(tc.policies, tc.attach...)
			cfg.ApplyDefaults()
			set, err := Compile(cfg, nil, Options{LookupEnv: lookup, ReadFile: readFile})
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Compile = %v, %v; want *schemas.InvalidError", set, err)
			}
			found := false
			for _, d := range inv.Diagnostics {
				if d.Path == tc.path && strings.Contains(d.Message, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no diagnostic at %s containing %q in:\n%v", tc.path, tc.msg, err)
			}
			if strings.Contains(err.Error(), shortSecret) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := routeCfg(map[string]schemas.Policy{
		"rl":   {RateLimit: &schemas.RateLimit{Rate: 1, Burst: 1}},
		"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"alice": hashKey(aliceKey)}}},
	}, "rl", "keys")
	g := newGateway(t, cfg, "r", Options{Registry: reg})
	for _, h := range []http.Header{nil, hdr("X-API-Key", "wrong")} {
		if res := g.do(t, "GET", "/", h); res.status != 401 && res.status != 429 {
			t.Fatalf("status %d", res.status)
		}
	}
	// Compiling again with the same registry reuses the collectors.
	again, err := Compile(cfg, g.set, Options{Registry: reg})
	if err != nil {
		t.Fatalf("second Compile: %v", err)
	}
	srv := newTestServer(t, again.Wrap("r", []string{"keys"}, http.NotFoundHandler()))
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// And a fresh set on the same registry (no prev) too.
	if _, err := Compile(cfg, nil, Options{Registry: reg}); err != nil {
		t.Fatalf("Compile on a used registry: %v", err)
	}

	tests := []struct {
		name string
		c    prometheus.Counter
		want float64
	}{
		{name: "rate limited", c: g.set.metrics.rateLimited.WithLabelValues("r", "rl"), want: 1},
		{name: "missing key", c: g.set.metrics.authFailures.WithLabelValues("keys", reasonMissing), want: 2},
		{name: "invalid key", c: g.set.metrics.authFailures.WithLabelValues("keys", reasonInvalid), want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m dto.Metric
			if err := tc.c.Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetCounter().GetValue(); got != tc.want {
				t.Fatalf("%s = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}
