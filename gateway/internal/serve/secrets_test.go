package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// secretValue is a distinctive string that must never appear in an answer.
const secretValue = "Zq7sEcReTvAlUe-do-not-echo"

// unixHTTP is an HTTP client that dials the admin socket.
func unixHTTP(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// TestSecretReferenceErrorsNeverShowTheValue pushes bundles whose secret
// references resolve to values that do not parse, and checks that the 422
// answer and GET /v1/status on the observe address name the reference but
// never quote the value. It sets environment variables, so it does not run
// in parallel.
func TestSecretReferenceErrorsNeverShowTheValue(t *testing.T) {
	dir := t.TempDir()
	writeRef := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		env   string // value of GITGATE_TEST_SECRET, "" for none
		ref   schemas.SecretRef
		algs  []string
		field string // jwksRef or secret
		names string // what the message must name
		leak  string // the value that must not show; default secretValue
	}{
		{name: "env JWKS that is not JSON", env: secretValue,
			ref: schemas.SecretRef{Env: "GITGATE_TEST_SECRET"}, algs: []string{"RS256"}, field: "jwksRef", names: "env:GITGATE_TEST_SECRET"},
		{name: "env JWKS with trailing garbage", env: `{"keys":[]}` + secretValue,
			ref: schemas.SecretRef{Env: "GITGATE_TEST_SECRET"}, algs: []string{"RS256"}, field: "jwksRef", names: "env:GITGATE_TEST_SECRET"},
		{name: "file JWKS with a key type that is a secret", ref: schemas.SecretRef{File: writeRef("kty.json", `{"keys":[{"kty":"`+secretValue+`"}]}`)},
			algs: []string{"RS256"}, field: "jwksRef", names: "file:"},
		{name: "file JWKS with a curve that is a secret", ref: schemas.SecretRef{File: writeRef("crv.json", `{"keys":[{"kty":"EC","crv":"`+secretValue+`"}]}`)},
			algs: []string{"ES256"}, field: "jwksRef", names: "file:"},
		{name: "file JWKS with use and alg that are secrets", ref: schemas.SecretRef{File: writeRef("use.json", `{"keys":[{"kty":"RSA","use":"`+secretValue+`","alg":"`+secretValue+`"}]}`)},
			algs: []string{"RS256"}, field: "jwksRef", names: "file:"},
		{name: "file JWKS with a number where a string goes", ref: schemas.SecretRef{File: writeRef("num.json", `{"keys":[{"kty":7192837465}]}`)},
			algs: []string{"RS256"}, field: "jwksRef", names: "file:", leak: "7192837465"},
		{name: "file JWKS whose keys is a string", ref: schemas.SecretRef{File: writeRef("str.json", `{"keys":"`+secretValue+`"}`)},
			algs: []string{"RS256"}, field: "jwksRef", names: "file:"},
		{name: "env HS256 secret too short", env: secretValue[:8],
			ref: schemas.SecretRef{Env: "GITGATE_TEST_SECRET"}, algs: []string{"HS256"}, field: "secret", names: "env:GITGATE_TEST_SECRET"},
	}
	up := upstream(t, "alpha")
	g := startGateway(t, t.TempDir(), func(c *Config) { c.ObserveAddr = "127.0.0.1:0" })
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	hc := unixHTTP(g.sock)
	defer hc.CloseIdleConnections()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GITGATE_TEST_SECRET", tt.env)
			b := bundle(t, "v"+string(rune('a'+i)), up.URL, "app")
			jwt := &schemas.JWT{Algorithms: tt.algs}
			ref := tt.ref
			if tt.field == "secret" {
				jwt.Secret = &ref
			} else {
				jwt.JWKSRef = &ref
			}
			b.Config.Policies = map[string]schemas.Policy{"auth": {JWT: jwt}}
			r := b.Config.Routes["all"]
			r.Policies = []string{"auth"}
			b.Config.Routes["all"] = r
			b.Config.ApplyDefaults()
			nb, err := schemas.NewBundle(b.Version, b.Source, b.Config, b.CreatedAt)
			if err != nil {
				t.Fatal(err)
			}
			body, err := json.Marshal(nb)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPut, "http://admin/v1/bundle", bytes.NewReader(body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("PUT: %d %s, want 422", resp.StatusCode, answer)
			}
			if !strings.Contains(string(answer), "policies.auth.jwt."+tt.field) || !strings.Contains(string(answer), tt.names) {
				t.Fatalf("422 answer does not name the field and the reference %q: %s", tt.names, answer)
			}
			_, status := fetch(t, g.observe+"/v1/status")
			if !strings.Contains(status, "policies.auth.jwt."+tt.field) {
				t.Fatalf("status does not show the rejection: %s", status)
			}
			leak := secretValue
			if tt.env != "" && len(tt.env) < len(leak) {
				leak = tt.env
			}
			if tt.leak != "" {
				leak = tt.leak
			}
			for what, text := range map[string]string{"422 answer": string(answer), "/v1/status": status} {
				if strings.Contains(text, leak) || strings.Contains(text, "'Z'") {
					t.Errorf("%s shows the secret value: %s", what, text)
				}
			}
		})
	}
}
