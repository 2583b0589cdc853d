package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitgate/gitgate/schemas"
)

const hsSecret = "0123456789abcdef0123456789abcdef-test-secret"

// testKeys are generated once: RSA key generation is slow under -race.
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) schemas.JWK {
	return schemas.JWK{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) schemas.JWK {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return schemas.JWK{Kty: "EC", Kid: kid, Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:])}
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func bearer(tok string) http.Header { return hdr("Authorization", "Bearer "+tok) }

func TestJWT(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "https://issuer.test", "aud": []string{"api"}, "sub": "user-1",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
			"tenant": "acme", "roles": []string{"a", "b"},
		}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }

	pubDER, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	noneTok := sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, good())

	cfg := routeCfg(map[string]schemas.Policy{
		"jwt": {JWT: &schemas.JWT{
			Issuer:     "https://issuer.test",
			Audiences:  []string{"api", "api2"},
			Algorithms: []string{"HS256", "RS256", "ES256"},
			Secret:     &schemas.SecretRef{Env: "JWT_SECRET"},
			// Ten minutes, so that "exp within leeway" (two minutes ago)
			// holds however long a loaded machine takes to run the case,
			// and fails with the default of 30s.
			Leeway: schemas.Duration(10 * time.Minute),
			JWKS: &schemas.JWKS{Keys: []schemas.JWK{
				rsaJWK("rsa1", &keys.rsa.PublicKey),
				ecJWK("ec1", &keys.ec.PublicKey),
			}},
			ClaimsToHeaders: map[string]string{"sub": "X-User", "tenant": "X-Tenant", "roles": "X-Roles"},
		}},
		"rsonly": {JWT: &schemas.JWT{
			Algorithms: []string{"RS256"},
			JWKS:       &schemas.JWKS{Keys: []schemas.JWK{rsaJWK("rsa1", &keys.rsa.PublicKey)}},
		}},
	}, "jwt")
	cfg.Routes["rs"] = schemas.Route{Policies: []string{"rsonly"}}
	g := newGateway(t, cfg, "r", Options{LookupEnv: env(map[string]string{"JWT_SECRET": hsSecret})})
	rsOnly := httpServer(t, g.set.Wrap("rs", []string{"rsonly"}, proxyTo(t, g.up)))

	tests := []struct {
		name   string
		srv    *gateway
		header http.Header
		status int
		www    string
	}{
		{name: "HS256 valid", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), good())), status: 200},
		{name: "RS256 valid with kid", header: bearer(sign(t, jwt.SigningMethodRS256, "rsa1", keys.rsa, good())), status: 200},
		{name: "RS256 valid without kid", header: bearer(sign(t, jwt.SigningMethodRS256, "", keys.rsa, good())), status: 200},
		{name: "ES256 valid", header: bearer(sign(t, jwt.SigningMethodES256, "ec1", keys.ec, good())), status: 200},
		{name: "second audience accepted", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("aud", "api2"))), status: 200},
		{name: "lower-case bearer scheme", header: hdr("Authorization", "bearer "+sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), good())), status: 200},
		{name: "exp within leeway", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("exp", now.Add(-2*time.Minute).Unix()))), status: 200},

		{name: "missing", status: 401, www: "Bearer"},
		{name: "basic scheme is no bearer token", header: hdr("Authorization", "Basic dXNlcjpwYXNz"), status: 401, www: "Bearer"},
		{name: "expired", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("exp", now.Add(-time.Hour).Unix()))), status: 401, www: `Bearer error="invalid_token"`},
		{name: "not yet valid", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("nbf", now.Add(time.Hour).Unix()))), status: 401, www: `Bearer error="invalid_token"`},
		{name: "wrongly signed HS256", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret+"x"), good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "wrongly signed RS256", header: bearer(sign(t, jwt.SigningMethodRS256, "rsa1", keys.rsaOther, good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "unknown kid", header: bearer(sign(t, jwt.SigningMethodRS256, "nope", keys.rsa, good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "alg none", header: bearer(noneTok), status: 401, www: `Bearer error="invalid_token"`},
		{name: "alg none carrying a valid HS256 signature", header: bearer(strings.TrimSuffix(noneTok, ".") + "." + strings.Split(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), good()), ".")[2]), status: 401, www: `Bearer error="invalid_token"`},
		{name: "HS256 signed with the RSA public key PEM", header: bearer(sign(t, jwt.SigningMethodHS256, "rsa1", pubPEM, good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "HS256 with the RSA public key PEM on an RS256-only policy", srv: rsOnly, header: bearer(sign(t, jwt.SigningMethodHS256, "rsa1", pubPEM, good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "HS384 not configured", header: bearer(sign(t, jwt.SigningMethodHS384, "", []byte(hsSecret), good())), status: 401, www: `Bearer error="invalid_token"`},
		{name: "wrong issuer", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("iss", "https://evil.test"))), status: 401, www: `Bearer error="invalid_token"`},
		{name: "no issuer", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), without("iss"))), status: 401, www: `Bearer error="invalid_token"`},
		{name: "malformed", header: bearer("not.a.jwt"), status: 401, www: `Bearer error="invalid_token"`},
		{name: "oversized", header: bearer(strings.Repeat("a", maxTokenBytes+1)), status: 401, www: `Bearer error="invalid_token"`},
		{name: "audience mismatch is forbidden", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), with("aud", "other"))), status: 403, www: `Bearer error="insufficient_scope"`},
		{name: "no audience", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), without("aud"))), status: 401, www: `Bearer error="invalid_token"`},
		{name: "expired and wrong audience is expired", header: bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), jwt.MapClaims{"iss": "https://issuer.test", "aud": "other", "exp": now.Add(-time.Hour).Unix()})), status: 401, www: `Bearer error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := g
			if tc.srv != nil {
				srv = tc.srv
			}
			h := tc.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("X-User", "forged")
			res := srv.do(t, "GET", "/", h)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
			if tc.status != 200 {
				if got := res.header.Get("WWW-Authenticate"); got != tc.www {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.www)
				}
				return
			}
			if got := res.seen.Header.Values("X-User"); len(got) != 1 || got[0] != "user-1" {
				t.Errorf("upstream X-User %q, want the sub claim only", got)
			}
			if got := res.seen.Header.Get("X-Tenant"); got != "acme" {
				t.Errorf("upstream X-Tenant %q", got)
			}
			if got := res.seen.Header.Get("X-Roles"); got != "a,b" {
				t.Errorf("upstream X-Roles %q", got)
			}
		})
	}
}

// httpServer serves h over real HTTP in front of an existing upstream.
func httpServer(t *testing.T, h http.Handler) *gateway {
	t.Helper()
	srv := newTestServer(t, h)
	return &gateway{srv: srv}
}

func TestJWTCustomHeaderAndJWKSRef(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	doc, err := json.Marshal(schemas.JWKS{Keys: []schemas.JWK{ecJWK("", &keys.ec.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := routeCfg(map[string]schemas.Policy{"jwt": {JWT: &schemas.JWT{
		Algorithms: []string{"ES256"},
		JWKSRef:    &schemas.SecretRef{File: "/secrets/jwks.json"},
		Header:     "X-Token",
	}}}, "jwt")
	readFile := func(p string) ([]byte, error) {
		if p != "/secrets/jwks.json" {
			t.Errorf("read %q", p)
		}
		return doc, nil
	}
	g := newGateway(t, cfg, "r", Options{ReadFile: readFile})
	tok := sign(t, jwt.SigningMethodES256, "any-kid", keys.ec, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{name: "raw token", header: hdr("X-Token", tok), status: 200},
		{name: "bearer prefix tolerated", header: hdr("X-Token", "Bearer "+tok), status: 200},
		{name: "authorization header not read", header: bearer(tok), status: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if res := g.do(t, "GET", "/", tc.header); res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
		})
	}
}

func TestJWTParserRefusesAlgorithmsNotConfigured(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	cfg := routeCfg(map[string]schemas.Policy{"jwt": {JWT: &schemas.JWT{
		Algorithms: []string{"RS256"},
		JWKS:       &schemas.JWKS{Keys: []schemas.JWK{rsaJWK("k", &keys.rsa.PublicKey)}},
	}}}, "jwt")
	cfg.ApplyDefaults()
	set, err := Compile(cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := set.policies["jwt"].mw.(*jwtPolicy)
	for _, tc := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
	}{
		{name: "HS256", m: jwt.SigningMethodHS256, key: []byte(hsSecret)},
		{name: "none", m: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType},
		{name: "ES256", m: jwt.SigningMethodES256, key: keys.ec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := sign(t, tc.m, "k", tc.key, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
			_, err := j.parser.ParseWithClaims(tok, jwt.MapClaims{}, func(*jwt.Token) (any, error) {
				t.Error("key function reached for an algorithm not configured")
				return nil, nil
			})
			if !errors.Is(err, jwt.ErrTokenSignatureInvalid) || !strings.Contains(err.Error(), "signing method") {
				t.Fatalf("err = %v, want the signing method refused", err)
			}
		})
	}
}

// TestJWTTimeClaims checks exp is required unless requireExp is false, and
// a token issued in the future (iat beyond the leeway) is refused.
func TestJWTTimeClaims(t *testing.T) {
	t.Parallel()
	no := false
	cfg := routeCfg(map[string]schemas.Policy{
		"strict": {JWT: &schemas.JWT{Algorithms: []string{"HS256"}, Secret: &schemas.SecretRef{Env: "JWT_SECRET"}}},
		"noexp":  {JWT: &schemas.JWT{Algorithms: []string{"HS256"}, Secret: &schemas.SecretRef{Env: "JWT_SECRET"}, RequireExp: &no}},
	}, "strict")
	cfg.Routes["noexp"] = schemas.Route{Policies: []string{"noexp"}}
	g := newGateway(t, cfg, "r", Options{LookupEnv: env(map[string]string{"JWT_SECRET": hsSecret})})
	noExp := httpServer(t, g.set.Wrap("noexp", []string{"noexp"}, proxyTo(t, g.up)))
	now := time.Now()
	tok := func(claims jwt.MapClaims) http.Header {
		return bearer(sign(t, jwt.SigningMethodHS256, "", []byte(hsSecret), claims))
	}
	exp := now.Add(time.Hour).Unix()
	tests := []struct {
		name   string
		srv    *gateway
		header http.Header
		status int
	}{
		{name: "exp required by default", header: tok(jwt.MapClaims{"sub": "u"}), status: 401},
		{name: "exp present", header: tok(jwt.MapClaims{"exp": exp}), status: 200},
		{name: "no exp with requireExp false", srv: noExp, header: tok(jwt.MapClaims{"sub": "u"}), status: 200},
		{name: "expired with requireExp false", srv: noExp, header: tok(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}), status: 401},
		{name: "iat in the past", header: tok(jwt.MapClaims{"exp": exp, "iat": now.Add(-time.Minute).Unix()}), status: 200},
		{name: "iat within the leeway", header: tok(jwt.MapClaims{"exp": exp, "iat": now.Add(10 * time.Second).Unix()}), status: 200},
		{name: "iat in the future", header: tok(jwt.MapClaims{"exp": exp, "iat": now.Add(time.Hour).Unix()}), status: 401},
		{name: "iat in the future with requireExp false", srv: noExp, header: tok(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := g
			if tc.srv != nil {
				srv = tc.srv
			}
			if res := srv.do(t, "GET", "/", tc.header); res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
		})
	}
}
