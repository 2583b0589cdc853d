package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// maxTokenBytes bounds a bearer token; a longer one is refused unparsed.
const maxTokenBytes = 16 << 10

// minRSABits refuses RSA keys too weak to sign with (the HS256 secret's
// bound is rules.MinHMACSecretBytes).
const minRSABits = 2048

// Supported JWT algorithms.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// publicKey is one JWKS key usable for verification.
type publicKey struct {
	kid string
	alg string // algorithm the key serves: RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// jwtPolicy is a compiled jwt policy.
type jwtPolicy struct {
	header     string // canonical header name
	bearer     bool   // the header is Authorization: require the Bearer scheme
	parser     *jwt.Parser
	secret     []byte
	keys       []publicKey
	remote     *jwksSource // keys fetched from jwksURL; nil: keys
	claims     []claimHeader
	counters   authCounters
	missing    *reply.Body
	invalid    *reply.Body
	forbidden  *reply.Body
	noKeys     *reply.Body
	challenge  []string
	invalidWWW []string
	scopeWWW   []string
}

// claimHeader copies one claim to one upstream header.
type claimHeader struct {
	claim  string
	header string // canonical
}

func init() {
	registerKind("jwt", inOrder, func(b *build, cfg *schemas.JWT) middleware {
		j := compileJWT(b.name, b.path, cfg, b.set, b.diags)
		if j == nil {
			return nil
		}
		if cfg.JWKSURL != "" {
			st := jwksSettings{url: cfg.JWKSURL, refresh: cfg.JWKSRefresh.D()}
			if cfg.JWKSCARef != nil {
				pem, err := b.set.resolveSecret(cfg.JWKSCARef)
				if err != nil {
					b.diags.add(b.path+".jwksCARef", err.Error())
					return nil
				}
				st.caPEM = string(pem)
			}
			if st.refresh <= 0 {
				st.refresh = 5 * time.Minute // a config compiled without defaults
			}
			src, err := b.jwksFor(st)
			if err != nil {
				b.diags.add(b.path+".jwksCARef", fmt.Sprintf("the CA bundle from %s: %v", cfg.JWKSCARef, err))
				return nil
			}
			j.remote = src
		}
		return j
	})
}

func compileJWT(policy, path string, cfg *schemas.JWT, s *Set, diags *diagnostics) *jwtPolicy {
	j := &jwtPolicy{
		counters:   s.authCounters(policy),
		missing:    reply.New("unauthorized", "bearer token required", ""),
		invalid:    reply.New("unauthorized", "bearer token not valid", ""),
		forbidden:  reply.New("forbidden", "bearer token not issued for this audience", ""),
		noKeys:     reply.New("jwks_unavailable", "the keys that verify bearer tokens have not been fetched yet", ""),
		challenge:  []string{`Bearer`},
		invalidWWW: []string{`Bearer error="invalid_token"`},
		scopeWWW:   []string{`Bearer error="insufficient_scope"`},
	}
	ok := true
	if !rules.Token(cfg.Header) {
		diags.add(path+".header", fmt.Sprintf("%q is not a valid header name", cfg.Header))
		ok = false
	}
	j.header = textproto.CanonicalMIMEHeaderKey(cfg.Header)
	j.bearer = j.header == "Authorization"

	wantHS, wantPublic := false, map[string]bool{}
	if len(cfg.Algorithms) == 0 {
		diags.add(path+".algorithms", "at least one algorithm is required (HS256, RS256, ES256)")
		ok = false
	}
	for i, alg := range cfg.Algorithms {
		switch alg {
		case algHS256:
			wantHS = true
		case algRS256, algES256:
			wantPublic[alg] = true
		default:
			diags.add(fmt.Sprintf("%s.algorithms[%d]", path, i), fmt.Sprintf("algorithm %q is not supported; use HS256, RS256 or ES256", alg))
			ok = false
		}
	}

	// Which algorithm needs which key source is rules.JWT's, checked by
	// Compile before this runs.
	if wantHS && cfg.Secret != nil {
		if secret, err := s.resolveSecret(cfg.Secret); err != nil {
			diags.add(path+".secret", err.Error())
			ok = false
		} else if err := rules.HMACSecret(*cfg.Secret, len(secret)); err != nil {
			diags.add(path+".secret", err.Error())
			ok = false
		} else {
			j.secret = secret
		}
	}

	if len(wantPublic) > 0 {
		// ref is the reference a set was read from, nil for an inline set:
		// messages about its keys name the reference, never a value.
		type keySet struct {
			path string
			jwks *schemas.JWKS
			ref  *schemas.SecretRef
		}
		var sets []keySet
		if cfg.JWKS != nil {
			sets = append(sets, keySet{path + ".jwks", cfg.JWKS, nil})
		}
		if cfg.JWKSRef != nil {
			doc, err := s.resolveSecret(cfg.JWKSRef)
			var set schemas.JWKS
			if err == nil {
				if jerr := json.Unmarshal(doc, &set); jerr != nil {
					err = fmt.Errorf("the document from %s is not a JWKS: %s", cfg.JWKSRef, jsonProblem(jerr))
				}
			}
			if err != nil {
				diags.add(path+".jwksRef", err.Error())
				ok = false
			} else {
				sets = append(sets, keySet{path + ".jwksRef", &set, cfg.JWKSRef})
			}
		}
		for _, set := range sets {
			for i, k := range set.jwks.Keys {
				pk, err := parseJWK(k)
				p := fmt.Sprintf("%s.keys[%d]", set.path, i)
				if err != nil {
					msg := err.Error()
					if set.ref != nil {
						msg = fmt.Sprintf("key %d of the JWKS from %s: %s", i, set.ref, redacted(err))
					}
					diags.add(p, msg)
					ok = false
					continue
				}
				if !wantPublic[pk.alg] {
					continue // a key for an algorithm not accepted is never used
				}
				j.keys = append(j.keys, pk)
			}
		}
		for alg := range wantPublic {
			if cfg.JWKSURL != "" {
				break // keys arrive after the apply
			}
			if !hasAlg(j.keys, alg) && ok {
				diags.add(path+".jwks", fmt.Sprintf("%s is in algorithms but no key in the JWKS serves it", alg))
				ok = false
			}
		}
	}

	for _, claim := range slices.Sorted(maps.Keys(cfg.ClaimsToHeaders)) {
		h := cfg.ClaimsToHeaders[claim]
		if err := rules.IdentityHeader(h); err != nil {
			diags.add(path+".claimsToHeaders."+claim, err.Error())
			ok = false
			continue
		}
		j.claims = append(j.claims, claimHeader{claim: claim, header: textproto.CanonicalMIMEHeaderKey(h)})
	}
	if !ok {
		return nil
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(cfg.Leeway.D()),
		jwt.WithTimeFunc(s.opts.Now),
		jwt.WithJSONNumber(),
		// A token issued in the future (iat beyond the leeway) is refused:
		// a clock far ahead, or a token minted to outlive its exp.
		jwt.WithIssuedAt(),
	}
	if cfg.ExpRequired() {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...))
	}
	j.parser = jwt.NewParser(opts...)
	return j
}

func hasAlg(keys []publicKey, alg string) bool {
	for _, k := range keys {
		if k.alg == alg {
			return true
		}
	}
	return false
}

// jwkError is a key refused for the value of one of its fields. Its Error
// quotes the value, for keys written in the config; redacted leaves it out,
// for keys read from a secret reference.
type jwkError struct {
	field  string // the JWK member, such as "kty"
	value  string
	reason string
}

func (e *jwkError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.field, e.value, e.reason)
}

// redacted returns the message of an error about a key without any value
// of the key: a *jwkError names its field only, and every other error of
// parseJWK is built from constant text and lengths.
func redacted(err error) string {
	var je *jwkError
	if errors.As(err, &je) {
		return fmt.Sprintf("%s: %s", je.field, je.reason)
	}
	return err.Error()
}

// jsonProblem describes a JSON decoding error without quoting the input:
// encoding/json's syntax errors show the offending character, which in a
// secret document is part of the secret.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		// Value is "number 42" for a number: keep the kind only. Field is
		// a path of JWKS member names, taken from the Go type.
		kind, _, _ := strings.Cut(typ.Value, " ")
		return fmt.Sprintf("a JSON %s where the JWKS needs a %s (at %s)", kind, typ.Type, typ.Field)
	default:
		return "not valid JSON"
	}
}

// parseJWK turns an RSA or P-256 JWK into a verification key. An error
// that quotes a value of the key is a *jwkError.
func parseJWK(k schemas.JWK) (publicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, &jwkError{"use", k.Use, `only signature keys (use "sig") can verify tokens`}
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != algRS256 {
			return publicKey{}, &jwkError{"alg", k.Alg, "an RSA key supports RS256 only"}
		}
		n, err := b64Int(k.N)
		if err != nil {
			return publicKey{}, fmt.Errorf("RSA modulus n: %w", err)
		}
		e, err := b64Int(k.E)
		if err != nil {
			return publicKey{}, fmt.Errorf("RSA exponent e: %w", err)
		}
		if n.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("RSA key is %d bits; at least %d are required", n.BitLen(), minRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return publicKey{}, fmt.Errorf("RSA exponent e is not a usable public exponent")
		}
		return publicKey{kid: k.Kid, alg: algRS256, key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "EC":
		if k.Crv != "P-256" {
			return publicKey{}, &jwkError{"crv", k.Crv, "only the EC curve P-256 (ES256) is supported"}
		}
		if k.Alg != "" && k.Alg != algES256 {
			return publicKey{}, &jwkError{"alg", k.Alg, "an EC key supports ES256 only"}
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, fmt.Errorf("EC coordinates x and y must be 32 bytes each, base64url without padding")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, fmt.Errorf("EC point: %w", err)
		}
		return publicKey{kid: k.Kid, alg: algES256, key: pub}, nil
	default:
		return publicKey{}, &jwkError{"kty", k.Kty, "key type not supported; use RSA or EC"}
	}
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding base64url: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}

// keyFunc hands the parser the keys for the token's algorithm only: the HMAC
// secret for HS256, public keys for RS256 and ES256 (when the token names a
// kid: the keys with that kid and the keys without one). The parser has
// already refused algorithms not configured.
func (j *jwtPolicy) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == algHS256 {
		return j.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	keys := j.keys
	if j.remote != nil {
		cur := j.remote.current()
		if cur == nil {
			return nil, errJWKSUnavailable
		}
		keys = cur.keys
	}
	var set jwt.VerificationKeySet
	for _, k := range keys {
		if k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w (alg %s)", errNoKey, alg)
	}
	return set, nil
}

// token returns the token of r, or "" when there is none.
func (j *jwtPolicy) token(r *http.Request) string {
	vals := r.Header[j.header]
	if len(vals) != 1 {
		return "" // none, or ambiguous
	}
	return extractBearer(vals[0], j.bearer)
}

// extractBearer returns the token of a header value: after a "Bearer "
// scheme (case-insensitive) when bearer is set, else the value with an
// optional Bearer scheme removed.
func extractBearer(v string, bearer bool) string {
	v = textproto.TrimString(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return textproto.TrimString(v[7:])
	}
	if bearer {
		return ""
	}
	return v
}

// classify maps a parse error to a metric reason and an HTTP status.
func classify(err error) (reason string, status int) {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return reasonExpired, http.StatusUnauthorized
	case errors.Is(err, jwt.ErrTokenInvalidAudience) &&
		!errors.Is(err, jwt.ErrTokenNotValidYet) && !errors.Is(err, jwt.ErrTokenInvalidIssuer) &&
		!errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && !errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		// Signature, time and issuer are good: the caller is authenticated
		// but the token is for another audience.
		return reasonForbidden, http.StatusForbidden
	default:
		return reasonInvalid, http.StatusUnauthorized
	}
}

// wrap refuses a missing token (401, WWW-Authenticate: Bearer), a bad one
// (401, error="invalid_token") and a good one for another audience (403,
// error="insufficient_scope"); it forwards a good one with the configured
// claims as headers.
func (j *jwtPolicy) wrap(_ string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range j.claims {
			headers.DeleteAll(r.Header, c.header) // X_User_Id too
		}
		tok := j.token(r)
		if tok == "" {
			inc(j.counters.missing)
			w.Header()["Www-Authenticate"] = j.challenge
			reply.Write(w, http.StatusUnauthorized, j.missing)
			return
		}
		claims := jwt.MapClaims{}
		var err error
		if len(tok) > maxTokenBytes {
			err = jwt.ErrTokenMalformed
		} else {
			_, err = j.parser.ParseWithClaims(tok, claims, j.keyFunc)
			if err != nil && j.remote != nil && j.retryAfterRefresh(r.Context(), err) {
				claims = jwt.MapClaims{}
				_, err = j.parser.ParseWithClaims(tok, claims, j.keyFunc)
			}
		}
		if errors.Is(err, errJWKSUnavailable) {
			// Not the caller's fault: the provider has not answered yet.
			reply.Write(w, http.StatusServiceUnavailable, j.noKeys)
			return
		}
		if err != nil {
			reason, status := classify(err)
			switch reason {
			case reasonExpired:
				inc(j.counters.expired)
			case reasonForbidden:
				inc(j.counters.forbidden)
			default:
				inc(j.counters.invalid)
			}
			if status == http.StatusForbidden {
				w.Header()["Www-Authenticate"] = j.scopeWWW
				reply.Write(w, status, j.forbidden)
			} else {
				w.Header()["Www-Authenticate"] = j.invalidWWW
				reply.Write(w, status, j.invalid)
			}
			return
		}
		for _, c := range j.claims {
			if v, ok := claimString(claims[c.claim]); ok {
				r.Header[c.header] = []string{v}
			}
		}
		markCredentialed(w)
		next.ServeHTTP(w, r)
	})
}

// retryAfterRefresh reports whether a token refused with err should be
// parsed again: the remote set was fetched for the first time, or
// refreshed because the token named an unknown kid (rate-limited, see
// refreshForUnknownKid).
func (j *jwtPolicy) retryAfterRefresh(ctx context.Context, err error) bool {
	switch {
	case errors.Is(err, errJWKSUnavailable):
		j.remote.waitFirst(ctx)
		return j.remote.current() != nil
	case errors.Is(err, errNoKey):
		return j.remote.refreshForUnknownKid(ctx)
	}
	return false
}

// claimString renders a claim as a header value: strings as they are,
// numbers and booleans in JSON form, arrays of those joined with ",".
// Objects and values with control characters are not copied.
func claimString(v any) (string, bool) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = t.String()
	case bool:
		s = strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			p, ok := claimString(e)
			if !ok {
				return "", false
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ",")
	default:
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return "", false
		}
	}
	return s, true
}
