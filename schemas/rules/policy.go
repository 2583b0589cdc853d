package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// MinHMACSecretBytes is the shortest HS256 secret accepted.
const MinHMACSecretBytes = 32

// Policy checks the rules of one policy that need no secret value: exactly
// one kind, and the rules of that kind.
func Policy(p schemas.Policy) []Violation {
	var out []Violation
	switch kinds := p.Kinds(); len(kinds) {
	case 0:
		out = append(out, violation("", "a policy needs exactly one of %s", strings.Join(schemas.PolicyKinds(), ", ")))
	case 1:
	default:
		out = append(out, violation("", "a policy has exactly one kind, this one has %s: split it into %d policies", strings.Join(kinds, " and "), len(kinds)))
	}
	if k := p.APIKey; k != nil {
		if k.ConsumerHeader != "" {
			out = append(out, at(".apiKey.consumerHeader", IdentityHeader(k.ConsumerHeader))...)
		}
		for _, consumer := range slices.Sorted(maps.Keys(k.Keys)) {
			if _, err := KeyHash(k.Keys[consumer]); err != nil {
				out = append(out, Violation{Field: ".apiKey.keys." + consumer, Message: err.Error()})
			}
		}
	}
	if rl := p.RateLimit; rl != nil {
		out = append(out, under(".rateLimit", RateLimit(*rl))...)
	}
	if j := p.JWT; j != nil {
		out = append(out, under(".jwt", JWT(*j))...)
	}
	if c := p.CORS; c != nil {
		out = append(out, under(".cors", CORS(*c))...)
	}
	for _, l := range []struct {
		name string
		l    *schemas.IPList
	}{{"ipAllow", p.IPAllow}, {"ipDeny", p.IPDeny}} {
		if l.l == nil {
			continue
		}
		for i, cidr := range l.l.CIDRs {
			if _, err := CIDR(cidr); err != nil {
				out = append(out, Violation{Field: fmt.Sprintf(".%s.cidrs[%d]", l.name, i), Message: err.Error()})
			}
		}
	}
	return out
}

func under(field string, vs []Violation) []Violation {
	for i := range vs {
		vs[i].Field = field + vs[i].Field
	}
	return vs
}

// KeyHash reads a stored API key, "sha256:" and the 64 lowercase hex digits
// of the key's SHA-256. Its message never repeats the value: a user who
// pasted a key in clear by mistake must not see it echoed in CI.
func KeyHash(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	digest, found := strings.CutPrefix(s, "sha256:")
	if !found || len(digest) != 2*sha256.Size || strings.ToLower(digest) != digest {
		return out, fail(`API keys are stored as hashes: write "sha256:" and the 64 lowercase hex digits of SHA-256 of the key (printf %%s "$KEY" | sha256sum), never the key itself`)
	}
	if _, err := hex.Decode(out[:], []byte(digest)); err != nil {
		return out, fail(`API keys are stored as hashes: write "sha256:" and the 64 lowercase hex digits of SHA-256 of the key (printf %%s "$KEY" | sha256sum), never the key itself`)
	}
	return out, nil
}

// JWT checks the settings of a jwt policy that need no secret value: HS256
// with a secret reference and a secret only with HS256, RS256 and ES256
// with public keys, one source of keys, and well-formed references.
func JWT(j schemas.JWT) []Violation {
	var out []Violation
	hs := slices.Contains(j.Algorithms, "HS256")
	asym := slices.Contains(j.Algorithms, "RS256") || slices.Contains(j.Algorithms, "ES256")
	if hs && j.Secret == nil {
		out = append(out, violation(".algorithms", "HS256 needs secret: {env: NAME} or {file: PATH}"))
	}
	if !hs && j.Secret != nil {
		out = append(out, violation(".secret", "secret is used only with HS256"))
	}
	sources := 0
	for _, set := range []bool{j.JWKS != nil, j.JWKSRef != nil, j.JWKSURL != ""} {
		if set {
			sources++
		}
	}
	if asym && sources == 0 {
		out = append(out, violation(".algorithms", "RS256 and ES256 need jwks, jwksRef or jwksURL"))
	}
	if !asym && sources > 0 {
		out = append(out, violation(".jwks", "public keys are used only with RS256 or ES256"))
	}
	if sources > 1 {
		out = append(out, violation(".jwksRef", "set one of jwks, jwksRef or jwksURL"))
	}
	if j.JWKSURL != "" {
		out = append(out, at(".jwksURL", JWKSURL(j.JWKSURL))...)
		if j.JWKSRefresh != 0 && j.JWKSRefresh.D() < MinJWKSRefresh {
			out = append(out, violation(".jwksRefresh", "jwksRefresh is %s; at least %s", j.JWKSRefresh.D(), MinJWKSRefresh))
		}
	} else {
		if j.JWKSCARef != nil {
			out = append(out, violation(".jwksCARef", "jwksCARef is used only with jwksURL"))
		}
		if j.JWKSRefresh != 0 {
			out = append(out, violation(".jwksRefresh", "jwksRefresh is used only with jwksURL"))
		}
	}
	for _, claim := range slices.Sorted(maps.Keys(j.ClaimsToHeaders)) {
		out = append(out, at(".claimsToHeaders."+claim, IdentityHeader(j.ClaimsToHeaders[claim]))...)
	}
	for _, ref := range []struct {
		name string
		r    *schemas.SecretRef
	}{{".secret", j.Secret}, {".jwksRef", j.JWKSRef}, {".jwksCARef", j.JWKSCARef}} {
		if ref.r != nil {
			out = append(out, at(ref.name, SecretRef(*ref.r))...)
		}
	}
	return out
}

// MinJWKSRefresh is the shortest jwksRefresh accepted: an identity
// provider is not polled more often than this.
const MinJWKSRefresh = 10 * time.Second

// JWKSURL reports a jwksURL the gateway will not fetch: it must be an
// absolute https URL with a host and without credentials or a fragment.
// Keys fetched over plain HTTP could be replaced by anyone on the path.
func JWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// Not err itself: a *url.Error quotes the URL, credentials and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("jwksURL is not a URL: %v", err)
	}
	switch {
	case u.Scheme != "https":
		return fail("jwksURL must use https (got scheme %q): keys fetched in clear could be replaced on the way", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return fail("jwksURL has no host")
	case u.User != nil:
		return fail("jwksURL must not carry credentials")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return fail("jwksURL must not have a fragment")
	}
	return nil
}

// SecretRef reports a reference that does not name exactly one place.
func SecretRef(r schemas.SecretRef) error {
	if (r.Env == "") == (r.File == "") {
		return fail("a secret reference has exactly one of env or file")
	}
	return nil
}

// HMACSecret reports an HS256 secret read from ref that is too short to
// sign with; n is its length in bytes. Only the gateway, which reads the
// secret, can apply it.
func HMACSecret(ref schemas.SecretRef, n int) error {
	if n < MinHMACSecretBytes {
		return fail("the secret from %s is %d bytes; HS256 needs at least %d", ref, n, MinHMACSecretBytes)
	}
	return nil
}

// CORS checks a cors policy: every origin usable, and credentials never
// with the origin "*", which browsers refuse.
func CORS(c schemas.CORS) []Violation {
	var out []Violation
	for i, o := range c.AllowOrigins {
		if _, err := Origin(o); err != nil {
			out = append(out, Violation{Field: fmt.Sprintf(".allowOrigins[%d]", i), Message: err.Error()})
		}
	}
	if c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
		out = append(out, violation(".allowCredentials", `allowCredentials cannot be used with allowOrigins "*": browsers refuse it; list the origins`))
	}
	return out
}

// Origin checks one allowOrigins entry and returns it the way a browser
// sends an origin: "*", "scheme://host[:port]" in lower case, or
// "scheme://*.suffix" for a wildcard of one or more DNS labels.
func Origin(o string) (string, error) {
	switch {
	case o == "*":
		return o, nil
	case o == "null":
		return "", fail(`origin "null" is sent by sandboxed and file: documents and cannot be trusted; remove it`)
	case strings.Contains(o, "*"):
		scheme, rest, found := strings.Cut(o, "://")
		host, hasStar := strings.CutPrefix(rest, "*.")
		if found && (scheme == "http" || scheme == "https") && hasStar && !strings.Contains(host, "*") {
			if norm, err := exactOrigin(scheme + "://" + host); err == nil && strings.Contains(norm, ".") {
				return scheme + "://*." + strings.TrimPrefix(norm, scheme+"://"), nil
			}
		}
		return "", fail("%q is not a wildcard origin such as \"https://*.example.com\"", o)
	}
	return exactOrigin(o)
}

func exactOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fail("%q is not an origin such as \"https://app.example.com\" (scheme and host, no path)", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// CIDR reads a network ("10.0.0.0/8", "2001:db8::/32") or a bare address (a
// /32 or /128), masked. IPv4-mapped IPv6 networks and zones are refused:
// client addresses are compared unmapped and without zone.
func CIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fail("%q is neither a CIDR (10.0.0.0/8) nor an IP address", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fail("%q is an IPv4-mapped IPv6 network; write the IPv4 network", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fail("%q is neither a CIDR (10.0.0.0/8) nor an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fail("%q has a zone; zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
