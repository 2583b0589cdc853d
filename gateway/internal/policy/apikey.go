package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// maxAPIKeyBytes bounds a presented key; a longer one is refused unhashed.
const maxAPIKeyBytes = 4096

// apiKey is a compiled apiKey policy.
type apiKey struct {
	inQuery   bool
	name      string // canonical header name, or the query parameter name
	consumers []string
	hashes    [][sha256.Size]byte
	consumerH string // canonical ConsumerHeader, "" when not set
	counters  authCounters
	challenge []string
	missing   *reply.Body
	invalid   *reply.Body
}

func init() {
	registerKind("apiKey", inOrder, func(b *build, cfg *schemas.APIKey) middleware {
		if k := compileAPIKey(b.name, b.path, cfg, b.set, b.diags); k != nil {
			return k
		}
		return nil
	})
}

func compileAPIKey(policy, path string, cfg *schemas.APIKey, s *Set, diags *diagnostics) *apiKey {
	k := &apiKey{
		counters: s.authCounters(policy),
		missing:  reply.New("unauthorized", "API key required", ""),
		invalid:  reply.New("unauthorized", "API key not valid", ""),
	}
	ok := true
	switch cfg.In {
	case "header":
		if !rules.Token(cfg.Name) {
			diags.add(path+".name", fmt.Sprintf("%q is not a valid header name", cfg.Name))
			ok = false
		}
		k.name = textproto.CanonicalMIMEHeaderKey(cfg.Name)
	case "query":
		if cfg.Name == "" {
			diags.add(path+".name", "a query parameter name is required")
			ok = false
		}
		k.inQuery = true
		k.name = cfg.Name
	default:
		diags.add(path+".in", fmt.Sprintf("in must be \"header\" or \"query\", got %q", cfg.In))
		ok = false
	}
	k.challenge = []string{fmt.Sprintf(`APIKey realm="gitgate", %s="%s"`, cfg.In, k.name)}
	if cfg.ConsumerHeader != "" {
		if err := rules.IdentityHeader(cfg.ConsumerHeader); err != nil {
			diags.add(path+".consumerHeader", err.Error())
			ok = false
		}
		k.consumerH = textproto.CanonicalMIMEHeaderKey(cfg.ConsumerHeader)
	}
	if len(cfg.Keys) == 0 {
		diags.add(path+".keys", "at least one key is required")
		ok = false
	}
	for _, consumer := range slices.Sorted(maps.Keys(cfg.Keys)) {
		h, err := rules.KeyHash(cfg.Keys[consumer])
		if err != nil {
			diags.add(path+".keys."+consumer, err.Error())
			ok = false
			continue
		}
		k.consumers = append(k.consumers, consumer)
		k.hashes = append(k.hashes, h)
	}
	if !ok {
		return nil
	}
	return k
}

// lookup returns the consumer whose stored hash equals the hash of
// presented. Every stored hash is compared, in constant time, whether or not
// an earlier one matched.
func (k *apiKey) lookup(presented string) (string, bool) {
	sum := sha256.Sum256([]byte(presented))
	found, idx := 0, 0
	for i := range k.hashes {
		eq := subtle.ConstantTimeCompare(sum[:], k.hashes[i][:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 {
		return "", false
	}
	return k.consumers[idx], true
}

// extract returns the presented key and r without it. ok is false when no
// key is present; several values are refused as ambiguous (multiple=true).
func (k *apiKey) extract(r *http.Request) (key string, out *http.Request, present, multiple bool) {
	if !k.inQuery {
		vals := r.Header[k.name]
		if len(vals) == 0 {
			return "", r, false, false
		}
		delete(r.Header, k.name)
		return vals[0], r, vals[0] != "", len(vals) > 1
	}
	if r.URL.RawQuery == "" {
		return "", r, false, false
	}
	rest, vals, err := cutQueryParam(r.URL.RawQuery, k.name)
	if err != nil {
		return "", r, true, true // unreadable query: refuse as invalid
	}
	if len(vals) == 0 {
		return "", r, false, false
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawQuery = rest
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return vals[0], r2, vals[0] != "", len(vals) > 1
}

// cutQueryParam removes every occurrence of name from the raw query and
// returns its values, leaving the other parameters byte for byte as sent.
func cutQueryParam(raw, name string) (rest string, vals []string, err error) {
	var b strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return "", nil, fmt.Errorf("unescaping query parameter name: %w", err)
		}
		if key != name {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(part)
			continue
		}
		v, err := url.QueryUnescape(rawVal)
		if err != nil {
			return "", nil, fmt.Errorf("unescaping query parameter %s: %w", name, err)
		}
		vals = append(vals, v)
	}
	return b.String(), vals, nil
}

// wrap refuses a missing or unknown key with 401 and WWW-Authenticate, and
// forwards a known one without the key and with the consumer name.
func (k *apiKey) wrap(_ string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k.consumerH != "" {
			headers.DeleteAll(r.Header, k.consumerH) // X_Consumer too
		}
		key, r, present, multiple := k.extract(r)
		if !present && !multiple {
			inc(k.counters.missing)
			w.Header()["Www-Authenticate"] = k.challenge
			reply.Write(w, http.StatusUnauthorized, k.missing)
			return
		}
		consumer, ok := "", false
		if !multiple && len(key) <= maxAPIKeyBytes {
			consumer, ok = k.lookup(key)
		}
		if !ok {
			inc(k.counters.invalid)
			w.Header()["Www-Authenticate"] = k.challenge
			reply.Write(w, http.StatusUnauthorized, k.invalid)
			return
		}
		if k.consumerH != "" {
			r.Header[k.consumerH] = []string{consumer}
		}
		markCredentialed(w)
		next.ServeHTTP(w, r)
	})
}
