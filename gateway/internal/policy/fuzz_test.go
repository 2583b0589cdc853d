package policy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// FuzzAPIKeyExtraction sends arbitrary header values and raw queries through
// header and query apiKey policies: only the exact keys pass, and a key never
// reaches the upstream.
func FuzzAPIKeyExtraction(f *testing.F) {
	f.Add(aliceKey, "api_key="+aliceKey)
	f.Add("K3Y-ALICE-0123456789", "a=1&api_key="+bobKey+"&b=%2")
	f.Add("", "api%5Fkey="+aliceKey+"&api_key=")
	f.Add(aliceKey+"\x00", ";api_key=x&&=")
	build := func(in string) *Set {
		cfg := apiKeyCfg(in, "api_key")
		if in == "header" {
			cfg = apiKeyCfg(in, "")
		}
		cfg.ApplyDefaults()
		set, err := Compile(cfg, nil, Options{})
		if err != nil {
			f.Fatal(err)
		}
		return set
	}
	sets := map[string]*Set{"header": build("header"), "query": build("query")}
	f.Fuzz(func(t *testing.T, headerVal, rawQuery string) {
		for in, set := range sets {
			var got *http.Request
			h := set.Wrap("r", []string{"keys"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				w.WriteHeader(http.StatusOK)
			}))
			r := &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: rawQuery},
				Header: http.Header{"X-Api-Key": {headerVal}, "X-Consumer": {"forged"}}, RemoteAddr: "127.0.0.1:1"}
			var w statusWriter
			h.ServeHTTP(&w, r)
			presented := headerVal
			if in == "query" {
				_, vals, err := cutQueryParam(rawQuery, "api_key")
				presented = ""
				if err == nil && len(vals) == 1 {
					presented = vals[0]
				}
			}
			switch w.status {
			case http.StatusOK:
				if presented != aliceKey && presented != bobKey {
					t.Fatalf("%s: key %q accepted", in, presented)
				}
				if in == "header" && len(got.Header["X-Api-Key"]) != 0 {
					t.Fatalf("header key forwarded: %q", got.Header["X-Api-Key"])
				}
				if in == "query" {
					if _, vals, err := cutQueryParam(got.URL.RawQuery, "api_key"); err != nil || len(vals) != 0 {
						t.Fatalf("query key forwarded in %q", got.URL.RawQuery)
					}
				}
				if c := got.Header.Get("X-Consumer"); c != "alice" && c != "bob" {
					t.Fatalf("consumer header %q", c)
				}
			case http.StatusUnauthorized:
			default:
				t.Fatalf("%s: status %d", in, w.status)
			}
		}
	})
}

// FuzzJWT sends arbitrary tokens through a policy accepting HS256, RS256 and
// ES256: nothing but the seeded valid token may pass.
func FuzzJWT(f *testing.F) {
	keys := testKeys()
	exp := time.Now().Add(24 * time.Hour).Unix()
	valid := map[string]bool{}
	for _, tc := range []struct {
		m   jwt.SigningMethod
		key any
	}{{jwt.SigningMethodHS256, []byte(hsSecret)}, {jwt.SigningMethodRS256, keys.rsa}, {jwt.SigningMethodES256, keys.ec}} {
		tok, err := jwt.NewWithClaims(tc.m, jwt.MapClaims{"exp": exp, "sub": "u"}).SignedString(tc.key)
		if err != nil {
			f.Fatal(err)
		}
		valid[tok] = true
		f.Add("Bearer " + tok)
		parts := strings.Split(tok, ".")
		f.Add("Bearer " + parts[0] + "." + parts[1] + ".")
		f.Add("bearer  " + tok + " ")
	}
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	f.Add("Basic x")
	cfg := routeCfg(map[string]schemas.Policy{"jwt": {JWT: &schemas.JWT{
		Algorithms:      []string{"HS256", "RS256", "ES256"},
		Secret:          &schemas.SecretRef{Env: "S"},
		JWKS:            &schemas.JWKS{Keys: []schemas.JWK{rsaJWK("", &keys.rsa.PublicKey), ecJWK("", &keys.ec.PublicKey)}},
		ClaimsToHeaders: map[string]string{"sub": "X-User"},
	}}}, "jwt")
	cfg.ApplyDefaults()
	set, err := Compile(cfg, nil, Options{LookupEnv: env(map[string]string{"S": hsSecret})})
	if err != nil {
		f.Fatal(err)
	}
	h := set.Wrap("r", []string{"jwt"}, okHandler)
	f.Fuzz(func(t *testing.T, authz string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Header: http.Header{"Authorization": {authz}}}
		var w statusWriter
		h.ServeHTTP(&w, r)
		switch w.status {
		case http.StatusOK:
			if !valid[extractBearer(authz, true)] {
				t.Fatalf("token accepted: %q", authz)
			}
		case http.StatusUnauthorized, http.StatusForbidden:
		default:
			t.Fatalf("status %d", w.status)
		}
	})
}

// FuzzCORSWildcard checks that a wildcard origin only matches origins with
// its scheme and suffix.
func FuzzCORSWildcard(f *testing.F) {
	f.Add("https://a.example.com")
	f.Add("https://.example.com")
	f.Add("https://evil.com/.example.com")
	f.Add("https://a.example.com.evil")
	norm, err := rules.Origin("https://*.example.com")
	if err != nil {
		f.Fatal(err)
	}
	w := wildcardOf(norm)
	f.Fuzz(func(t *testing.T, origin string) {
		if !w.match(origin) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Host, ".example.com") || u.Path != "" || u.User != nil || u.Port() != "" {
			t.Fatalf("wildcard matched %q", origin)
		}
	})
}
