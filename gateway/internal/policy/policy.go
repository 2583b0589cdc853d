package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Options configure compilation. The zero value is usable.
type Options struct {
	// LookupEnv resolves {env: NAME} references. Nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile resolves {file: PATH} references. Nil: os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// ClientIP returns the address of the client of a request, used by
	// rate limits keyed by client IP and by ipAllow/ipDeny. Nil: the peer
	// address of the connection (r.RemoteAddr); see ClientIPFunc for the
	// trusted-proxy rule.
	ClientIP func(*http.Request) netip.Addr
	// Registry receives the policy metrics. Nil: no metrics. Compiling again
	// with the same registry reuses the registered collectors.
	Registry prometheus.Registerer
	// Now is the clock of rate limits and JWT time checks. Nil: time.Now.
	Now func() time.Time
}

func (o *Options) fill() {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.ClientIP == nil {
		o.ClientIP = PeerIP
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// middleware is one compiled policy. wrap puts it in front of next for one
// route; it is called once per route at Wrap time, never per request.
type middleware interface {
	wrap(route string, next http.Handler) http.Handler
}

// compiled is a policy with its kind, so Wrap can hoist CORS.
type compiled struct {
	kind string
	mw   middleware
}

// Set is the compiled policies of one config. It is safe for concurrent use.
type Set struct {
	opts     Options
	policies map[string]compiled
	// limiters are the rate-limit stores by policy name, handed on to the
	// next Set when a policy's settings did not change.
	limiters map[string]*limiterStore
	metrics  *metrics
}

// Compile builds every policy of cfg. prev, when not nil, is the Set of the
// running config, whose state (rate-limit buckets) is kept for policies that
// did not change. An error is a *schemas.InvalidError naming each problem;
// errors about secrets name the reference, never its value.
func Compile(cfg *schemas.Config, prev *Set, opts Options) (*Set, error) {
	opts.fill()
	s := &Set{
		opts:     opts,
		policies: make(map[string]compiled, len(cfg.Policies)),
		limiters: make(map[string]*limiterStore),
	}
	var diags diagnostics
	if opts.Registry != nil {
		if prev != nil && prev.metrics != nil && prev.opts.Registry == opts.Registry {
			s.metrics = prev.metrics
		} else {
			m, err := newMetrics(opts.Registry)
			if err != nil {
				return nil, fmt.Errorf("registering policy metrics: %w", err)
			}
			s.metrics = m
		}
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		p := cfg.Policies[name]
		path := "policies." + name
		var mw middleware
		if vs := rules.Policy(p); len(vs) > 0 {
			for _, v := range vs {
				diags = append(diags, v.At(path))
			}
			continue
		}
		kind := p.Kind()
		path += "." + kind
		switch kind {
		case "rateLimit":
			var store *limiterStore
			if prev != nil {
				if old := prev.limiters[name]; old != nil && old.cfg == *p.RateLimit {
					store = old
				}
			}
			rl, st := compileRateLimit(name, path, *p.RateLimit, store, s, &diags)
			if rl != nil {
				s.limiters[name] = st
				mw = rl
			}
		case "apiKey":
			if k := compileAPIKey(name, path, p.APIKey, s, &diags); k != nil {
				mw = k
			}
		case "jwt":
			if j := compileJWT(name, path, p.JWT, s, &diags); j != nil {
				mw = j
			}
		case "cors":
			if c := compileCORS(path, p.CORS, &diags); c != nil {
				mw = c
			}
		case "ipAllow", "ipDeny":
			list := p.IPAllow
			if kind == "ipDeny" {
				list = p.IPDeny
			}
			if l := compileIPList(name, path, list, kind == "ipAllow", s, &diags); l != nil {
				mw = l
			}
		}
		if mw != nil {
			s.policies[name] = compiled{kind: kind, mw: mw}
		}
	}

	for _, rname := range slices.Sorted(maps.Keys(cfg.Routes)) {
		for i, pname := range cfg.Routes[rname].Policies {
			if _, ok := cfg.Policies[pname]; !ok {
				diags.add(fmt.Sprintf("routes.%s.policies[%d]", rname, i),
					rules.Unknown("policy", "policies", pname, slices.Sorted(maps.Keys(cfg.Policies))))
			}
		}
	}
	if err := diags.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Wrap returns next behind the policies that route names, in order, except
// that cors policies run first. A name the Set does not know (a caller bug:
// Compile refuses routes naming unknown policies) fails closed with 500.
//
// Each policy is told to an observed request's ResponseWriter (see
// AnswerRecorder) before it decides, so that a request a policy answers is
// counted and logged with that policy's name.
func (s *Set) Wrap(route string, policies []string, next http.Handler) http.Handler {
	type link struct {
		name string
		compiled
	}
	chain := make([]link, 0, len(policies))
	for _, name := range policies {
		c, ok := s.policies[name]
		if !ok {
			return marked(name, failClosed(name))
		}
		chain = append(chain, link{name, c})
	}
	// Stable: CORS first, the rest in the listed order.
	slices.SortStableFunc(chain, func(a, b link) int {
		return cmp.Compare(corsRank(a.kind), corsRank(b.kind))
	})
	h := next
	for i := len(chain) - 1; i >= 0; i-- {
		h = marked(chain[i].name, chain[i].mw.wrap(route, h))
	}
	return h
}

// AnswerRecorder is implemented by the ResponseWriter of a request that is
// counted and logged (the proxy's observation): SetPolicy names the policy
// deciding on the request, the one that answered unless a later policy or
// the route takes over.
type AnswerRecorder interface {
	SetPolicy(name string)
}

// marked tells policy's name to an AnswerRecorder before h runs.
func marked(policy string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := w.(AnswerRecorder); ok {
			a.SetPolicy(policy)
		}
		h.ServeHTTP(w, r)
	})
}

func corsRank(kind string) int {
	if kind == "cors" {
		return 0
	}
	return 1
}

// Close releases what the set holds. The set starts no goroutines (rate-limit
// stores expire buckets lazily), so Close only drops references; stores
// handed on to a later Set stay alive there. Close is safe to call twice.
func (s *Set) Close() {}

func failClosed(name string) http.Handler {
	body := errorBody("policy_unavailable", fmt.Sprintf("policy %q is not compiled", name))
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, body)
	})
}

// diagnostics collects problems found while compiling.
type diagnostics []schemas.Diagnostic

func (d *diagnostics) add(path, msg string) {
	*d = append(*d, schemas.Diagnostic{Path: path, Message: msg})
}

func (d diagnostics) err() error {
	if len(d) == 0 {
		return nil
	}
	out := slices.Clone(d)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return &schemas.InvalidError{Diagnostics: out}
}

// writeJSON answers with a small JSON error body.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var (
	jsonContentType = []string{"application/json"}
	nosniff         = []string{"nosniff"}
)

// errorBody renders {"error":code,"message":msg} once, at compile time.
func errorBody(code, msg string) []byte {
	b, err := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
	if err != nil { // two strings always marshal
		panic(err)
	}
	return b
}
