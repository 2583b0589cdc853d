package runtime

import (
	"cmp"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/cache"
	"github.com/gitgate/gitgate/gateway/internal/clientip"
	"github.com/gitgate/gitgate/gateway/internal/compress"
	"github.com/gitgate/gitgate/gateway/internal/policy"
	"github.com/gitgate/gitgate/gateway/internal/proxy"
	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/gateway/internal/router"
	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/gateway/internal/traffic"
	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
)

// Options configure an Engine.
type Options struct {
	// TrustedProxies are peers whose X-Forwarded-* headers are kept and
	// whose X-Forwarded-For names the client, for the policies and the
	// proxy alike. Nil: none.
	TrustedProxies []netip.Prefix
	// Registry receives the data plane's metrics. Nil: no metrics.
	Registry prometheus.Registerer
	// Logger receives events and, with AccessLog, one line per request.
	Logger zerolog.Logger
	// LookupEnv resolves {env: NAME} secret references. Nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// AccessLog logs every request. Default off.
	AccessLog bool
	// Tracer starts a server span per request (see proxy.Options.Tracer).
	// Nil: none.
	Tracer trace.Tracer
	// CacheMaxBytes bounds the memory of the response cache of all
	// routes together. 0: cache.DefaultMaxBytes.
	CacheMaxBytes int64
	// GCPercent is the garbage collector target New sets when the GOGC
	// environment variable is unset: 0 means DefaultGCPercent, a negative
	// value leaves the Go runtime's setting alone. GOGC, when set, always
	// wins.
	GCPercent int
	// Resolver resolves the upstreams' dns:// and srv:// targets. Nil:
	// the servers of /etc/resolv.conf.
	Resolver *upstream.Resolver
}

// DefaultGCPercent is the GC target of a gateway whose GOGC is unset. The
// data plane's live heap is small (the snapshot) while every request
// allocates a few KiB of short-lived objects, so Go's default of 100 runs
// the collector very often: in BenchmarkServe, 400 cut CPU per request by
// 15-25% and the CPU of a 10,000-route apply by about 20%, for a heap that
// peaks at about five times the live snapshot instead of twice. Set GOGC
// (or GOMEMLIMIT, which still applies) to trade back.
const DefaultGCPercent = 400

var gcOnce sync.Once

// tuneGC applies Options.GCPercent once per process.
func tuneGC(percent int) {
	if p := gcTarget(percent, os.LookupEnv); p > 0 {
		gcOnce.Do(func() { debug.SetGCPercent(p) })
	}
}

// gcTarget returns the GC percent to set, 0 for none.
func gcTarget(percent int, lookupEnv func(string) (string, bool)) int {
	if percent < 0 {
		return 0
	}
	if _, set := lookupEnv("GOGC"); set {
		return 0
	}
	if percent == 0 {
		return DefaultGCPercent
	}
	return percent
}

// TargetStatus is the state of one upstream target.
type TargetStatus = upstream.TargetStatus

// Status describes the running snapshot.
type Status struct {
	// Version and Digest of the running bundle; empty before the first apply.
	Version string `json:"version"`
	Digest  string `json:"digest"`
	// AppliedAt is when the running bundle was applied.
	AppliedAt time.Time `json:"appliedAt"`
	// Routes is the number of routes served.
	Routes int `json:"routes"`
	// Upstreams holds each upstream's targets.
	Upstreams map[string][]TargetStatus `json:"upstreams"`
	// Breakers holds the state ("closed", "open", "half-open") of each
	// upstream that has a circuit breaker.
	Breakers map[string]string `json:"breakers"`
	// Discovery holds the resolution state of each upstream with a
	// dns:// or srv:// target.
	Discovery map[string]client.DiscoveryStatus `json:"discovery,omitempty"`
	// Traffic is what the running version and the one before it served;
	// nil before the first apply.
	Traffic *client.TrafficReport `json:"traffic,omitempty"`
	// JWKS holds the remote key set of each jwt policy with a jwksURL.
	JWKS map[string]client.JWKSStatus `json:"jwks,omitempty"`
	// Failover holds the state of each failover upstream.
	Failover map[string]client.FailoverStatus `json:"failover,omitempty"`
	// Cache is the response cache of all routes; nil before the first
	// apply.
	Cache *client.CacheStatus `json:"cache,omitempty"`
}

// Engine is the data plane: an http.Handler serving from the current
// snapshot, and the apply path that replaces it.
type Engine struct {
	opts       Options
	popts      *proxy.Options
	policyOpts policy.Options
	log        zerolog.Logger
	cur        atomic.Pointer[snapshot]
	// cache holds the cached responses of every route, across snapshots.
	cache *cache.Store

	mu     sync.Mutex // serializes Apply, Check and Close
	closed bool

	liveMu sync.Mutex
	pools  map[*upstream.Pool]int // number of live snapshots using each pool
	live   map[*snapshot]struct{}
	// previous is the traffic of the snapshot the current one replaced.
	previous atomic.Pointer[pastTraffic]
}

// pastTraffic is a replaced snapshot's traffic and when it served.
type pastTraffic struct {
	set          *traffic.Set
	version      string
	since, until time.Time
}

// New returns an Engine with no config; it answers 503 until Apply. The
// first New of a process sets the GC target (see Options.GCPercent).
func New(opts Options) *Engine {
	tuneGC(opts.GCPercent)
	e := &Engine{
		opts:  opts,
		log:   opts.Logger.With().Str("component", "runtime").Logger(),
		pools: map[*upstream.Pool]int{},
		live:  map[*snapshot]struct{}{},
	}
	e.popts = &proxy.Options{TrustedProxies: opts.TrustedProxies, Logger: opts.Logger, AccessLog: opts.AccessLog, Tracer: opts.Tracer}
	// Policies read the client address that ServeHTTP's observation
	// decided once per request (clientip.Carrier); ClientIP is the same
	// rule for a writer that carries none.
	trusted := opts.TrustedProxies
	e.policyOpts = policy.Options{LookupEnv: opts.LookupEnv, Registry: opts.Registry, Logger: opts.Logger,
		ClientIP: func(r *http.Request) netip.Addr { return clientip.Of(r, trusted).Addr }}
	c, err := cache.New(cache.Options{MaxBytes: opts.CacheMaxBytes, Registry: opts.Registry, Logger: opts.Logger, Credentialed: proxy.Credentialed})
	if err != nil {
		e.log.Error().Err(err).Msg("response cache metrics disabled")
		c, _ = cache.New(cache.Options{MaxBytes: opts.CacheMaxBytes, Logger: opts.Logger, Credentialed: proxy.Credentialed})
	}
	e.cache = c
	if opts.Registry != nil {
		m, err := proxy.NewMetrics(opts.Registry)
		if err != nil {
			e.log.Error().Err(err).Msg("data plane metrics disabled")
		} else {
			e.popts.Metrics = m
		}
		if err := opts.Registry.Register(upstreamCollector{e}); err != nil {
			e.log.Error().Err(err).Msg("upstream metrics disabled")
		}
	}
	return e
}

var bodyNoConfig = reply.New("no_config", "no config loaded", "")

// ServeHTTP routes r with the current snapshot and serves it. With metrics
// or the access log on, every request is counted and logged once, by the
// observation started here, whoever answers it: no config, a bad path, no
// route, a policy, the upstream or the gateway for a failed upstream.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ob := e.popts.Observe(w, r) // decides the client, once
	e.serve(ob, r)
	ob.Release() // not deferred: a request that panicked keeps its Observation
}

// serve is ServeHTTP for the request that ob observes.
func (e *Engine) serve(ob *proxy.Observation, r *http.Request) {
	defer ob.End() // deferred: a panic (http.ErrAbortHandler) is recorded too
	var w http.ResponseWriter = ob
	s := e.acquire()
	if s == nil {
		reply.Write(w, http.StatusServiceUnavailable, bodyNoConfig)
		return
	}
	defer s.unref()
	ob.SetVersion(s.bundle().Version)
	if !screen(w, r) {
		return
	}
	r, ok := normalizePath(r)
	if !ok {
		reply.Write(w, http.StatusBadRequest, bodyBadPath)
		return
	}
	m, ok := s.table.Match(r)
	if !ok {
		proxy.NotFound(w)
		return
	}
	h := s.handlers[m.Index]
	ob.SetRoute(s.table.Names()[m.Index])
	if h == nil {
		proxy.NotFound(w)
		return
	}
	h.ServeHTTP(w, proxy.WithParams(r, m.Params))
}

// msgBadPath starts the message of every refused request path.
const msgBadPath = "bad request path"

var bodyBadPath = reply.New("bad_path", msgBadPath, "")

// normalizePath returns r with its path cleaned by router.CleanPath, so that
// the path matched is the path forwarded: "/public/../admin" is routed, and
// sent upstream, as "/admin". ok is false for a path the gateway refuses:
// an encoded slash, backslash or NUL, a raw backslash or NUL, or a bad
// percent-escape. A clean path costs no allocation; a changed one costs a
// shallow copy of r and its URL, with RawPath dropped (the upstream gets
// the path in its default escaping).
func normalizePath(r *http.Request) (*http.Request, bool) {
	u := r.URL
	if u.RawPath != "" && !router.SafeEscapes(u.RawPath) {
		return r, false
	}
	clean, ok := router.CleanPath(u.Path)
	if !ok {
		return r, false
	}
	if clean == u.Path {
		return r, true
	}
	u2 := *u
	u2.Path, u2.RawPath = clean, ""
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u2
	return r2, true
}

// acquire returns the current snapshot with a reference held, nil when
// none is loaded.
func (e *Engine) acquire() *snapshot {
	for {
		s := e.cur.Load()
		if s == nil || s.ref() {
			return s
		}
		// s drained between Load and ref: it is no longer current.
	}
}

// Apply verifies b, compiles it and swaps it in. On error the running
// snapshot is untouched; the error is a *schemas.InvalidError listing every
// problem. A bundle with the running digest only updates the recorded
// bundle (its version and source), since the config is the same.
func (e *Engine) Apply(b *schemas.Bundle) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("applying bundle: engine is closed")
	}
	cur := e.cur.Load()
	if cur != nil && b != nil && cur.bundle().Digest == b.Digest {
		if err := verify(b); err != nil {
			return err
		}
		cur.meta.Store(&meta{bundle: b, appliedAt: cur.meta.Load().appliedAt})
		return nil
	}
	s, err := e.compile(b, cur)
	if err != nil {
		return err
	}
	e.liveMu.Lock()
	for _, p := range s.pools {
		e.pools[p]++
	}
	e.live[s] = struct{}{}
	e.liveMu.Unlock()
	for _, p := range s.pools {
		p.Start()
	}
	waitResolved(s.pools)
	s.refs.Store(1)
	e.cur.Store(s)
	e.cache.Retain(s.cacheKeep)
	if cur != nil {
		m := cur.meta.Load()
		e.previous.Store(&pastTraffic{set: cur.traffic, version: m.bundle.Version, since: m.appliedAt, until: s.meta.Load().appliedAt})
		e.forgetRemoved(cur, s)
		cur.unref()
	}
	e.log.Info().Str("version", b.Version).Str("digest", b.Digest).Int("routes", s.table.Len()).Msg("config applied")
	return nil
}

// forgetRemoved drops the metric series of routes that old serves and s
// does not, so that a config churning route names does not grow the
// registry for ever.
func (e *Engine) forgetRemoved(old, s *snapshot) {
	m := e.popts.Metrics
	if m == nil {
		return
	}
	keep := s.table.Names() // sorted
	for _, name := range old.table.Names() {
		if _, found := slices.BinarySearch(keep, name); !found {
			m.Forget(name)
		}
	}
}

// Check compiles b as Apply would and discards the result: a dry run that
// swaps nothing in. The admin socket does not offer it; tests use it.
func (e *Engine) Check(b *schemas.Bundle) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.compile(b, nil)
	if err != nil {
		return err
	}
	s.discard(nil)
	return nil
}

// Current returns the running bundle, nil before the first apply.
func (e *Engine) Current() *schemas.Bundle {
	if s := e.cur.Load(); s != nil {
		return s.bundle()
	}
	return nil
}

// Status describes the running snapshot and the health of its upstreams.
func (e *Engine) Status() Status {
	st := Status{Upstreams: map[string][]TargetStatus{}, Breakers: map[string]string{}}
	s := e.cur.Load()
	if s == nil {
		return st
	}
	m := s.meta.Load()
	st.Version, st.Digest, st.AppliedAt = m.bundle.Version, m.bundle.Digest, m.appliedAt
	st.Routes = s.table.Len()
	cs := e.cache.Stats()
	st.Cache = &client.CacheStatus{Entries: cs.Entries, Bytes: cs.Bytes, MaxBytes: cs.MaxBytes}
	for name, p := range s.pools {
		st.Upstreams[name] = p.Status()
		if b := p.Breaker(); b != nil {
			st.Breakers[name] = b.State().String()
		}
		if d := p.Discovery(); d != nil {
			if st.Discovery == nil {
				st.Discovery = map[string]client.DiscoveryStatus{}
			}
			st.Discovery[name] = *d
		}
	}
	st.Failover = failoverStatus(s)
	st.Traffic = &client.TrafficReport{
		LatencyBoundsSeconds: traffic.BoundsSeconds(),
		Current:              s.traffic.Read(m.bundle.Version, m.appliedAt, time.Time{}),
	}
	if p := e.previous.Load(); p != nil {
		st.Traffic.Previous = p.set.Read(p.version, p.since, p.until)
	}
	if s.policies != nil {
		for _, j := range s.policies.JWKS() {
			if st.JWKS == nil {
				st.JWKS = map[string]client.JWKSStatus{}
			}
			st.JWKS[j.Policy] = client.JWKSStatus{URL: j.URL, Keys: j.Keys, LastSuccess: j.LastSuccess.UTC(), LastError: j.LastError}
		}
	}
	return st
}

// Close stops serving, stops every health checker, waits for them and
// closes idle upstream connections. Requests still in
// flight finish on what they hold.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if s := e.cur.Swap(nil); s != nil {
		s.unref()
	}
	e.liveMu.Lock()
	live := make([]*snapshot, 0, len(e.live))
	for s := range e.live {
		live = append(live, s)
	}
	pools := make([]*upstream.Pool, 0, len(e.pools))
	for p := range e.pools {
		pools = append(pools, p)
	}
	clear(e.pools)
	clear(e.live)
	e.liveMu.Unlock()
	for _, s := range live {
		s.closePolicies()
	}
	for _, p := range pools {
		p.Close()
	}
	return nil
}

// verify checks b's envelope and reports a failure as a diagnostic.
func verify(b *schemas.Bundle) error {
	if b == nil {
		return &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{Path: "bundle", Message: "no bundle"}}}
	}
	if err := b.Verify(); err != nil {
		return &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{Path: "bundle", Message: err.Error()}}}
	}
	return nil
}

// compile builds a snapshot of b. With prev set, pools whose settings did
// not change are taken over from prev and policy state is carried over.
//
// The work runs on up to three goroutines, all finished before compile
// returns: the digest check (a full JSON encode of the config), the route
// table, and the rest (pools, policies, per-route handlers). On the
// gateway's two cores this halves the wall time of a large apply; the
// digest is still checked before anything compiled is used.
func (e *Engine) compile(b *schemas.Bundle, prev *snapshot) (*snapshot, error) {
	if b == nil {
		return nil, verify(b)
	}
	var wg sync.WaitGroup
	var verr error
	wg.Go(func() { verr = verify(b) })
	cfg := b.Config.WithDefaults()
	// From here cfg is only read.
	var table *router.Table
	var terr error
	wg.Go(func() { table, terr = router.Build(cfg.Routes) })
	s, err := e.build(b, &cfg, prev, &wg, &table, &terr)
	wg.Wait()
	if verr != nil {
		if s != nil {
			s.discard(s.fresh)
		}
		return nil, verr
	}
	if s != nil {
		s.fresh = nil
	}
	return s, err
}

// build compiles everything but the route table, which another goroutine
// builds into *table; build waits for it (wg) before it needs it.
func (e *Engine) build(b *schemas.Bundle, cfg *schemas.Config, prev *snapshot, wg *sync.WaitGroup, table **router.Table, terr *error) (*snapshot, error) {

	var diags []schemas.Diagnostic
	addErr := func(err error, path string) {
		var inv *schemas.InvalidError
		if errors.As(err, &inv) {
			diags = append(diags, inv.Diagnostics...)
		} else if err != nil {
			diags = append(diags, schemas.Diagnostic{Path: path, Message: err.Error()})
		}
	}
	s := &snapshot{engine: e, pools: make(map[string]*upstream.Pool, len(cfg.Upstreams))}
	s.meta.Store(&meta{bundle: b, appliedAt: time.Now().UTC()})
	fresh := map[*upstream.Pool]bool{}
	forwarders := make(map[string]*proxy.Forwarder, len(cfg.Upstreams))
	for name, spec := range cfg.Upstreams {
		if spec.Failover != nil {
			continue // built below, from its groups' forwarders
		}
		if spec.TLS != nil && spec.TLS.InsecureSkipVerify {
			// Said at every apply, not only when the pool is built, so
			// the opt-in never goes quiet while it is in force.
			e.opts.Logger.Warn().Str("upstream", name).Msg("upstream tls.insecureSkipVerify is set: the certificates of its targets are not verified")
		}
		if prev != nil {
			if old := prev.pools[name]; old != nil {
				if fp, err := json.Marshal(spec); err == nil && string(fp) == old.Fingerprint() && old.TLSCurrent() {
					s.pools[name] = old
					forwarders[name] = proxy.NewForwarder(old, e.popts)
					continue
				}
			}
		}
		p, err := upstream.NewPool(name, spec, upstream.Options{Logger: e.opts.Logger, Secrets: secretref.Source{LookupEnv: e.opts.LookupEnv}, Resolver: e.opts.Resolver})
		if err != nil {
			addErr(err, "upstreams."+name)
			continue
		}
		s.pools[name] = p
		fresh[p] = true
		forwarders[name] = proxy.NewForwarder(p, e.popts)
	}
	s.failovers = buildFailovers(cfg, forwarders, e.popts, prev, addErr)
	var prevSet *policy.Set
	if prev != nil {
		prevSet = prev.policies
	}
	// policy.Compile reports routes naming unknown policies.
	set, err := policy.Compile(cfg, prevSet, e.policyOpts)
	addErr(err, "policies")
	s.policies = set

	// handlers is indexed like the table's Names (Match.Index): route
	// names in sorted order.
	names := slices.Sorted(maps.Keys(cfg.Routes))
	s.handlers = make([]http.Handler, len(names))
	counters := make([]*traffic.Route, 0, len(names))
	for i, name := range names {
		spec := cfg.Routes[name]
		rt, err := proxy.NewRoute(name, spec, forwarders, e.popts)
		if err != nil {
			addErr(err, "routes."+name)
			continue
		}
		rt.SetConfigVersion(b.Version)
		counters = append(counters, rt.Traffic())
		var h http.Handler = rt
		// Outside in: policies, compression, the cache, the route.
		h, ns := e.cache.Wrap(name, spec, h) // inside the policies: auth runs before a hit
		if ns != "" {
			s.cacheKeep = append(s.cacheKeep, ns)
		}
		if h, err = compress.New(spec.Compress, h); err != nil {
			addErr(err, "routes."+name+".compress")
			continue
		}
		if set != nil && len(spec.Policies) > 0 {
			h = set.Wrap(name, spec.Policies, h)
		}
		s.handlers[i] = guardRoute(spec, h)
	}
	wg.Wait()
	addErr(*terr, "routes")
	s.table = *table
	if s.table != nil && !slices.Equal(s.table.Names(), names) {
		// Cannot happen: Build keeps every route when it succeeds.
		addErr(errors.New("route table and handlers disagree"), "routes")
	}
	s.fresh = fresh
	s.traffic = traffic.NewSet(counters)
	if len(diags) > 0 {
		s.discard(fresh)
		// A shared rule may be reported by two compilers (the router and
		// the route both check a match regex with rules.Regex): the same
		// path and message count once.
		slices.SortStableFunc(diags, func(a, b schemas.Diagnostic) int {
			return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
		})
		diags = slices.Compact(diags)
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}
	return s, nil
}

// waitResolved waits, at most upstream.FirstResolutionWait in all, for the
// first resolution of the pools with a dns:// or srv:// target, so that a
// new one has its members when it starts serving.
func waitResolved(pools map[string]*upstream.Pool) {
	timer := time.NewTimer(upstream.FirstResolutionWait)
	defer timer.Stop()
	for _, p := range pools {
		select {
		case <-p.Resolved():
		case <-timer.C:
			return
		}
	}
}
