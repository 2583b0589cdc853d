package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "zc-jwks-provider-hangs",
		criterion: "a jwt policy verifies tokens with keys from a jwksURL on a local HTTPS server (its CA by " +
			"jwksCARef); the server then hangs on every request: a token naming an unknown kid asks for a " +
			"refresh that times out (401), 50 tokens of the known key keep getting 200 from the last good set, " +
			"GET /v1/status shows the set's last error with its key still served, the log says so, and an unrelated config " +
			"applied during the hang keeps the cached set (200 under the new config)",
		run: jwksProviderHangs,
	})
}

// hangingJWKS is an HTTPS JWKS server that can be told to hang.
type hangingJWKS struct {
	srv     *httptest.Server
	doc     []byte
	hang    atomic.Bool
	stop    chan struct{}
	once    sync.Once
	fetches atomic.Int64
}

func newHangingJWKS(pub *rsa.PublicKey, kid string) (*hangingJWKS, error) {
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	if err != nil {
		return nil, fmt.Errorf("encoding the JWKS: %w", err)
	}
	j := &hangingJWKS{doc: doc, stop: make(chan struct{})}
	j.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		if j.hang.Load() {
			select {
			case <-j.stop:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(j.doc)
	}))
	return j, nil
}

func (j *hangingJWKS) Close() {
	j.once.Do(func() { close(j.stop) })
	j.srv.Close()
}

// jwksConfig is harness.ConfigYAML with a route /secure behind a jwt
// policy whose keys come from jwksURL.
func jwksConfig(upstream, label, jwksURL, caFile string) string {
	cfg := harness.ConfigYAML(upstream, label, map[string]string{"/secure": label})
	cfg = strings.Replace(cfg, "  extra0:\n", "  extra0:\n    policies: [auth]\n", 1)
	return cfg + fmt.Sprintf("policies:\n  auth:\n    jwt:\n      algorithms: [RS256]\n      jwksURL: %q\n      jwksCARef: {file: %q}\n", jwksURL, caFile)
}

func jwksProviderHangs(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the signing key: %w", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the second key: %w", err)
	}
	idp, err := newHangingJWKS(&key.PublicKey, "k1")
	if err != nil {
		return err
	}
	t.Cleanup(idp.Close)
	caFile := filepath.Join(t.dir, "jwks-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.srv.Certificate().Raw}), 0o600); err != nil {
		return fmt.Errorf("writing the JWKS server's CA: %w", err)
	}
	jwksURL := idp.srv.URL + "/.well-known/jwks.json"

	if _, err := t.pushServed(ctx, st, jwksConfig(t.upstream, "c2", jwksURL, caFile), "c2: /secure behind a remote JWKS", "c2"); err != nil {
		return err
	}

	token := func(kid string, k *rsa.PrivateKey) (string, error) {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "e2e", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		return tok.SignedString(k)
	}
	good, err := token("k1", key)
	if err != nil {
		return err
	}
	unknown, err := token("k2", other)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	secure := func(tok string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+st.GatewayAddr+"/secure", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Config"), nil
	}
	if code, _, err := secure(good); err != nil || code != http.StatusOK {
		return fmt.Errorf("token of the published key before the hang: %d %v, want 200", code, err)
	}

	idp.hang.Store(true)
	before := idp.fetches.Load()
	// The unknown kid asks for a refresh; the provider hangs and the
	// fetch times out (5s): the token is refused, not left hanging.
	if code, _, err := secure(unknown); err != nil || code != http.StatusUnauthorized {
		return fmt.Errorf("token of an unknown kid while the provider hangs: %d %v, want 401", code, err)
	}
	if idp.fetches.Load() == before {
		return fmt.Errorf("the unknown kid did not ask the provider for a refresh")
	}
	for i := range 50 {
		if code, _, err := secure(good); err != nil || code != http.StatusOK {
			return fmt.Errorf("token %d of 50 of the known key while the provider hangs: %d %v, want 200", i+1, code, err)
		}
	}
	err = harness.WaitFor(ctx, 20*time.Second, "the status to show the failed JWKS fetch", func() (bool, error) {
		s, err := st.Admin.Status(ctx)
		if err != nil {
			return false, err
		}
		j, ok := s.JWKS["auth"]
		return ok && j.Keys == 1 && j.LastError != "" && !j.LastSuccess.IsZero(), nil
	})
	if err != nil {
		return err
	}
	if !logContains(st.Gateway.Log, "JWKS fetch failed") {
		return fmt.Errorf("the gateway's log does not say the JWKS fetch failed")
	}
	s, _ := st.Admin.Status(ctx)
	t.Logf("status during the hang: keys=%d lastError=%q", s.JWKS["auth"].Keys, s.JWKS["auth"].LastError)

	// An unrelated change applied during the hang: the policy did not
	// change, so it keeps its cached set and the apply does not wait on
	// the provider.
	if _, err := t.pushServed(ctx, st, jwksConfig(t.upstream, "c3", jwksURL, caFile), "c3: new labels, same policy", "c3"); err != nil {
		return err
	}
	if code, label, err := secure(good); err != nil || code != http.StatusOK || label != "c3" {
		return fmt.Errorf("token of the known key under c3 during the hang: %d %q %v, want 200 from c3", code, label, err)
	}
	return nil
}
