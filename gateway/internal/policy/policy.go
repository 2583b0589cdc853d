package policy

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/clientip"
	"github.com/gitgate/gitgate/gateway/internal/reply"
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
	// rate limits keyed by client IP and by ipAllow/ipDeny when the
	// request's ResponseWriter does not carry its client (see
	// clientip.Carrier; the runtime's always does). Nil: the peer address
	// of the connection (clientip.Peer).
	ClientIP func(*http.Request) netip.Addr
	// Registry receives the policy metrics. Nil: no metrics. Compiling again
	// with the same registry reuses the registered collectors.
	Registry prometheus.Registerer
	// Now is the clock of rate limits and JWT time checks. Nil: time.Now.
	Now func() time.Time
	// Logger receives the results of remote JWKS fetches. Zero: no logs.
	Logger zerolog.Logger

	// Bounds of remote JWKS fetches, zero for the defaults (tests shorten
	// them).
	jwksTimeout  time.Duration
	jwksMaxBytes int64
	jwksKidGap   time.Duration
}

func (o *Options) fill() {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.ClientIP == nil {
		o.ClientIP = clientip.Peer
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

// compiled is a policy with its kind's order in a chain.
type compiled struct {
	order kindOrder
	mw    middleware
}

// policySpec is one policy to compile: its kind's name and settings.
type policySpec struct {
	kind string
	spec any
}

// compilePolicies compiles specs (by policy name) with their registered
// kinds into s.
func (s *Set) compilePolicies(specs map[string]policySpec, prev *Set, diags *diagnostics) {
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		p := specs[name]
		k, ok := kinds[p.kind]
		if !ok {
			diags.add("policies."+name, fmt.Sprintf("policy kind %q is not supported by this gateway (it knows %s)", p.kind, strings.Join(registeredKinds(), ", ")))
			continue
		}
		b := &build{set: s, prev: prev, name: name, path: "policies." + name + "." + p.kind, diags: diags}
		if mw := k.compile(b, p.spec); mw != nil {
			s.policies[name] = compiled{order: k.order, mw: mw}
		}
	}
}

// Set is the compiled policies of one config. It is safe for concurrent use.
type Set struct {
	opts     Options
	policies map[string]compiled
	// limiters are the rate-limit stores by policy name, handed on to the
	// next Set when a policy's settings did not change.
	limiters map[string]*limiterStore
	// jwks are the remote key sets by jwt policy name; the Set holds one
	// reference to each (see jwksSource.release).
	jwks map[string]*jwksSource
	// redisConns are the Redis clients of store-redis rate limits by
	// settings digest; the Set holds one reference to each.
	redisConns map[string]*redisConn
	// redisPolicies names the Set's store-redis rate limits, whose
	// metric series it holds (metrics.storeStarted).
	redisPolicies []string
	closeOnce     sync.Once
	metrics       *metrics
}

// Compile builds every policy of cfg. prev, when not nil, is the Set of the
// running config, whose state (rate-limit buckets) is kept for policies that
// did not change. An error is a *schemas.InvalidError naming each problem;
// errors about secrets name the reference, never its value.
func Compile(cfg *schemas.Config, prev *Set, opts Options) (*Set, error) {
	var diags diagnostics
	specs := make(map[string]policySpec, len(cfg.Policies))
	for name, p := range cfg.Policies {
		if vs := rules.Policy(p); len(vs) > 0 {
			for _, v := range vs {
				diags = append(diags, v.At("policies."+name))
			}
			continue
		}
		kind, spec := p.Spec()
		specs[name] = policySpec{kind: kind, spec: spec}
	}
	defined := slices.Sorted(maps.Keys(cfg.Policies))
	for _, rname := range slices.Sorted(maps.Keys(cfg.Routes)) {
		for i, pname := range cfg.Routes[rname].Policies {
			if _, ok := cfg.Policies[pname]; !ok {
				diags.add(fmt.Sprintf("routes.%s.policies[%d]", rname, i), rules.Unknown("policy", "policies", pname, defined))
			}
		}
	}
	return compileSpecs(specs, prev, opts, diags)
}

// compileSpecs builds a Set of specs, policies by name whose settings
// passed the shared rules; diags holds the problems found so far.
func compileSpecs(specs map[string]policySpec, prev *Set, opts Options, diags diagnostics) (*Set, error) {
	opts.fill()
	s := &Set{
		opts:     opts,
		policies: make(map[string]compiled, len(specs)),
		limiters: make(map[string]*limiterStore),
		jwks:     make(map[string]*jwksSource),

		redisConns: make(map[string]*redisConn),
	}
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
	s.compilePolicies(specs, prev, &diags)
	if err := diags.err(); err != nil {
		s.Close() // the key sets it started or retained
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
	// Stable: runFirst kinds (cors) first, the rest in the listed order.
	slices.SortStableFunc(chain, func(a, b link) int {
		return cmp.Compare(a.order, b.order)
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

// Close releases the Set's remote JWKS sources and Redis clients: a
// source no later Set kept stops its refresh goroutine, and Close waits
// for it; a Redis client no later Set kept is closed. Local rate-limit
// stores need nothing (buckets expire lazily, and a store handed on to a
// later Set lives on there). The runtime calls it once when a snapshot is
// released; more calls do nothing.
func (s *Set) Close() {
	s.closeOnce.Do(func() {
		for _, src := range s.jwks {
			src.release()
		}
		for _, c := range s.redisConns {
			c.release()
		}
		for _, name := range s.redisPolicies {
			s.metrics.storeStopped(name)
		}
	})
}

func failClosed(name string) http.Handler {
	body := reply.New("policy_unavailable", fmt.Sprintf("policy %q is not compiled", name), "")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply.Write(w, http.StatusInternalServerError, body)
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
