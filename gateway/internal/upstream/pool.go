package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Errors returned by Pool.Pick. Both mean the request gets a 503.
var (
	// ErrNoHealthyTarget means every target is unhealthy or ejected.
	ErrNoHealthyTarget = errors.New("no healthy target")
	// ErrBreakerOpen means the upstream's circuit breaker refuses requests.
	ErrBreakerOpen = errors.New("circuit breaker open")
)

// Options configure a Pool.
type Options struct {
	// Now is the clock of ejections and the breaker. Nil: time.Now.
	Now func() time.Time
	// Logger receives health transitions. The zero value logs nothing.
	Logger zerolog.Logger
	// Secrets resolves the references of the tls section (CA bundle,
	// client certificate and key). The zero value reads the process
	// environment and the file system.
	Secrets secretref.Source
	// Resolver resolves dns:// and srv:// targets. Nil: one built from
	// /etc/resolv.conf.
	Resolver *Resolver
}

// TargetStatus is a snapshot of one target for status pages, in the admin
// API's shape.
type TargetStatus = client.TargetStatus

// Target is one base URL of a pool with its live state.
type Target struct {
	// URL is the parsed base URL; read-only.
	URL  *url.URL
	raw  string
	seed uint64

	inFlight     atomic.Int64
	healthy      atomic.Bool
	fails        atomic.Int64
	ejectedUntil atomic.Int64 // unix nanos; 0: not ejected
	ejections    atomic.Int64

	// draining is set while a target that left a discovered pool finishes
	// its requests: it is never picked again.
	draining atomic.Bool

	// Health check counters, touched only by the pool's checker goroutine.
	hcPass, hcFail int
}

// String returns the target URL as configured.
func (t *Target) String() string { return t.raw }

// InFlight returns the number of attempts the target is serving.
func (t *Target) InFlight() int64 { return t.inFlight.Load() }

func (t *Target) available(now func() time.Time) bool {
	if !t.healthy.Load() || t.draining.Load() {
		return false
	}
	if e := t.ejectedUntil.Load(); e != 0 && now().UnixNano() < e {
		return false
	}
	return true
}

// Pool is the compiled, stateful form of one schemas.Upstream.
type Pool struct {
	name        string
	spec        schemas.Upstream
	fingerprint string
	secrets     secretref.Source
	tlsDigest   string // materialDigest of spec.TLS when built
	// members is the immutable membership that Pick chooses from; a
	// discovered pool replaces it as its records change.
	members atomic.Pointer[membership]
	// disc is the discovery of a dns:// or srv:// target, nil for a pool
	// of static targets.
	disc      *discovery
	breaker   *Breaker
	transport *http.Transport
	fast      *fastTransport
	now       func() time.Time
	log       zerolog.Logger
	rr        atomic.Uint64

	startOnce sync.Once
	closeOnce sync.Once
	ctx       context.Context
	resolved  chan struct{} // closed by the first resolution
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// NewPool builds the pool of upstream name from spec, which must have its
// defaults applied. Nothing is started; call Start. A bad spec returns a
// *schemas.InvalidError whose paths start with "upstreams.<name>".
func NewPool(name string, spec schemas.Upstream, opts Options) (*Pool, error) {
	var diags []schemas.Diagnostic
	at := func(path, format string, args ...any) {
		diags = append(diags, schemas.Diagnostic{Path: "upstreams." + name + path, Message: fmt.Sprintf(format, args...)})
	}
	if len(spec.Targets) == 0 {
		at(".targets", "an upstream needs at least one target")
	}
	bad := false
	for _, v := range rules.Upstream(spec) {
		diags = append(diags, v.At("upstreams."+name))
		bad = true
	}
	targets := make([]*Target, 0, len(spec.Targets))
	var dt *rules.DiscoveryTarget
	for _, raw := range spec.Targets {
		if rules.IsDiscovery(raw) {
			if d, err := rules.ParseDiscovery(raw); err == nil && !bad {
				dt = &d
			}
			continue
		}
		u, err := url.Parse(raw)
		if bad || err != nil { // rules.Upstream reported it
			continue
		}
		targets = append(targets, newTarget(u, raw))
	}
	if dt != nil && opts.Resolver == nil {
		r, err := NewResolver("")
		if err != nil {
			at(".targets[0]", "no DNS resolver for %s targets: %v (see --dns-resolver)", dt.Scheme+"://", err)
		}
		opts.Resolver = r
	}
	switch spec.Balance {
	case schemas.BalanceRoundRobin, schemas.BalanceLeastRequests, schemas.BalanceRandom:
	case schemas.BalanceHash:
		if spec.HashOn == nil {
			at(".hashOn", "hash balancing needs hashOn (header, cookie or clientIP)")
		}
	default:
		at(".balance", "unknown balance %q: use round_robin, least_requests, random or hash", spec.Balance)
	}
	if h := spec.HealthCheck; h != nil {
		if h.Interval <= 0 || h.Timeout <= 0 || h.HealthyThreshold < 1 || h.UnhealthyThreshold < 1 {
			at(".healthCheck", "interval, timeout and thresholds must be positive")
		}
		if len(h.Path) == 0 || h.Path[0] != '/' {
			at(".healthCheck.path", "path %q must start with /", h.Path)
		}
	}
	if o := spec.OutlierDetection; o != nil && (o.ConsecutiveFailures < 1 || o.BaseEjection <= 0 || o.MaxEjection < o.BaseEjection) {
		at(".outlierDetection", "consecutiveFailures must be positive and 0 < baseEjection <= maxEjection")
	}
	if b := spec.CircuitBreaker; b != nil {
		if b.ConsecutiveFailures < 1 || b.OpenDuration <= 0 || b.HalfOpenRequests < 1 {
			at(".circuitBreaker", "consecutiveFailures, openDuration and halfOpenRequests must be positive")
		}
		if b.ErrorRatio < 0 || b.ErrorRatio > 1 {
			at(".circuitBreaker.errorRatio", "errorRatio %v must be within [0, 1]", b.ErrorRatio)
		}
	}
	if spec.MaxConnsPerTarget < 0 || spec.MaxIdleConnsPerTarget < 0 {
		at("", "connection limits must not be negative")
	}
	var tlsCfg *tls.Config
	// Read before the configuration is built: a file that changes in
	// between makes the next apply build the pool again.
	tlsDigest := materialDigest(spec.TLS, opts.Secrets)
	if !bad {
		var tdiags []schemas.Diagnostic
		tlsCfg, tdiags = tlsConfig("upstreams."+name+".tls", spec.TLS, opts.Secrets)
		diags = append(diags, tdiags...)
		if dt != nil && tlsCfg.ServerName == "" {
			// Members are addresses: verify the name they were found by.
			tlsCfg.ServerName = dt.ServerName()
		}
	}
	if len(diags) > 0 {
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}
	fp, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("fingerprinting upstream %s: %w", name, err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr, dialer := newTransport(spec, tlsCfg)
	setProtocol(tr, spec.Protocol)
	p := &Pool{
		name:        name,
		spec:        spec,
		fingerprint: string(fp),
		secrets:     opts.Secrets,
		tlsDigest:   tlsDigest,
		breaker:     newBreaker(spec.CircuitBreaker, now),
		transport:   tr,
		fast:        newFastTransport(tr, dialer, fastPath(spec.Protocol), spec.MaxIdleConnsPerTarget, spec.MaxConnsPerTarget),
		now:         now,
		log:         opts.Logger.With().Str("upstream", name).Logger(),
		ctx:         ctx,
		cancel:      cancel,
	}
	p.resolved = make(chan struct{})
	if dt != nil {
		p.disc = newDiscovery(*dt, spec, opts, tr)
	} else {
		close(p.resolved)
	}
	p.members.Store(newMembership(targets, nil))
	p.fast.sync(targets)
	return p, nil
}

// newTarget returns a healthy target of base URL u, written raw.
func newTarget(u *url.URL, raw string) *Target {
	t := &Target{URL: u, raw: raw, seed: mix(fnv64(raw))}
	t.healthy.Store(true)
	return t
}

// newTransport builds the pool's http.Transport, which carries every
// request to an https:// target and every health check, with tlsCfg.
func newTransport(spec schemas.Upstream, tlsCfg *tls.Config) (*http.Transport, *net.Dialer) {
	d := &net.Dialer{Timeout: spec.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   spec.MaxIdleConnsPerTarget,
		MaxConnsPerHost:       spec.MaxConnsPerTarget,
		IdleConnTimeout:       90 * time.Second,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Upstreams speak HTTP/1.1 with keep-alive; bodies pass through as
		// they are encoded.
		ForceAttemptHTTP2:  false,
		DisableCompression: true,
	}, d
}

// Name returns the upstream's name.
func (p *Pool) Name() string { return p.name }

// Fingerprint identifies the pool's settings: two pools with equal
// fingerprints are interchangeable, so the runtime keeps the running one.
func (p *Pool) Fingerprint() string { return p.fingerprint }

// TLSCurrent reports whether the CA bundle and client certificate the
// pool was built with are still what its tls references resolve to. When
// they are not (a rotated certificate file), the runtime builds a new pool
// even though the settings are the same.
func (p *Pool) TLSCurrent() bool {
	return materialDigest(p.spec.TLS, p.secrets) == p.tlsDigest
}

// Transport returns the pool's keep-alive transport: a synchronous
// HTTP/1.1 client for plain requests to http:// targets, http.Transport
// for the rest (see fastTransport).
func (p *Pool) Transport() http.RoundTripper { return p.fast }

// RoundTripDirect is Transport().RoundTrip for a caller that recycles
// req and buf: kept reports that req went to the http.Transport, which may
// go on using it (its header and body) after returning, so it must not be
// reused. Otherwise the response, its body readers and its header map are
// buf's, and buf may serve another round trip once the response's body
// was closed and nothing refers to the response or its header map (the
// header's values are not buf's: they may be kept).
func (p *Pool) RoundTripDirect(req *http.Request, buf *ResponseBuffer) (res *http.Response, kept bool, err error) {
	return p.fast.roundTrip(req, &buf.fr)
}

// ResponseBuffer is where RoundTripDirect reads a response: its zero value
// is ready to use.
type ResponseBuffer struct{ fr fastResponse }

// Reset drops buf's references to its last response, its request and its
// connection, keeping the header map for the next.
func (buf *ResponseBuffer) Reset() { buf.fr = fastResponse{hdr: buf.fr.hdr} }

// FastTarget reports whether t is served by the pool's synchronous
// HTTP/1.1 path: an http:// target of a pool whose connections are not
// capped. A request to it takes that path unless it has an upgrade,
// Expect, TE or trailers, is marked to close, or has a body of unknown
// length or over MaxFastBody bytes; the proxy then skips ReverseProxy's
// copy of the request (see package proxy).
func (p *Pool) FastTarget(t *Target) bool {
	return (*p.fast.conns.Load())[t.URL.Host] != nil
}

// MaxFastBody is the largest request body the synchronous path sends.
const MaxFastBody = maxFastBody

// Informational receives the 1xx answers (but 101) that a fast exchange
// reads before the final one, as httptrace's Got1xxResponse does for
// http.Transport. The fast path finds it under InformationalKey in the
// request's context, so that a caller whose context already carries its
// own state needs no httptrace layer (and no allocation) per request.
type Informational interface {
	Got1xx(code int, header http.Header) error
}

// InformationalKey is the context key of an Informational.
type InformationalKey struct{}

// Aborter is a request context that interrupts the connection of a fast
// exchange itself when it is canceled: Watch registers the function that
// does it (false: canceled already, or another exchange watches), Unwatch
// removes it (false: cancellation ran it already). The fast path uses it
// when the request's context is one, and context.AfterFunc otherwise (a
// context derived from an Aborter is canceled on its own too, so it is
// not looked for among the parents).
type Aborter interface {
	Watch(abort func()) bool
	Unwatch() bool
}

// HashOn returns what the hash balancer hashes, nil for other balancers.
func (p *Pool) HashOn() *schemas.HashOn {
	if p.spec.Balance != schemas.BalanceHash {
		return nil
	}
	return p.spec.HashOn
}

// Targets returns the pool's current targets; the slice must not be
// changed. A discovered pool's members change over time: each call
// returns the set of that moment.
func (p *Pool) Targets() []*Target { return p.members.Load().targets }

// targets yields the pool's current targets with their indexes, all of
// one membership: code that ranges over p.targets (a count of available
// targets for failover groups) reads the members of that moment.
func (p *Pool) targets(yield func(int, *Target) bool) {
	for i, t := range p.members.Load().targets {
		if !yield(i, t) {
			return
		}
	}
}

// Breaker returns the pool's circuit breaker, nil when none is configured.
func (p *Pool) Breaker() *Breaker { return p.breaker }

// Pick chooses a target for one attempt. key is the request's hash for the
// hash balancer (ignored by the others); avoid, when not nil, is a target
// to skip if another one is available (the one a retry failed on). A
// picked target must be handed back with Done.
func (p *Pool) Pick(key uint64, avoid *Target) (*Target, error) {
	if !p.breaker.Allow() {
		return nil, ErrBreakerOpen
	}
	var t *Target
	m := p.members.Load()
	switch p.spec.Balance {
	case schemas.BalanceLeastRequests:
		t = p.pickLeast(m, avoid)
	case schemas.BalanceRandom:
		t = p.pickFrom(m, rand.Uint64(), avoid)
	case schemas.BalanceHash:
		t = p.pickHash(m, key, avoid)
	default:
		t = p.pickFrom(m, p.rr.Add(1)-1, avoid)
	}
	if t == nil {
		p.breaker.Record(Ignored)
		return nil, ErrNoHealthyTarget
	}
	t.inFlight.Add(1)
	return t, nil
}

// Done ends an attempt on t started by Pick, feeding the outcome to the
// outlier detector and the circuit breaker.
func (p *Pool) Done(t *Target, o Outcome) {
	t.inFlight.Add(-1)
	p.breaker.Record(o)
	od := p.spec.OutlierDetection
	if od == nil {
		return
	}
	switch o {
	case Success:
		if t.fails.Load() != 0 {
			t.fails.Store(0)
		}
		if t.ejections.Load() != 0 {
			// Forget past ejections once the target has stayed in for
			// MaxEjection after its last one.
			if e := t.ejectedUntil.Load(); p.now().UnixNano()-e > int64(od.MaxEjection) {
				t.ejections.Store(0)
			}
		}
	case Failure:
		if t.fails.Add(1) < int64(od.ConsecutiveFailures) {
			return
		}
		t.fails.Store(0)
		n := t.ejections.Add(1)
		d := od.BaseEjection.D()
		for i := int64(1); i < n && d < od.MaxEjection.D(); i++ {
			d *= 2
		}
		d = min(d, od.MaxEjection.D())
		t.ejectedUntil.Store(p.now().Add(d).UnixNano())
		p.log.Warn().Str("target", t.raw).Dur("ejection", d).Msg("target ejected after consecutive failures")
	}
}

// pickFrom walks the ring from start and returns the first available
// target that is not avoid, else an available member of weight 0, else
// avoid when it is available, else nil.
func (p *Pool) pickFrom(m *membership, start uint64, avoid *Target) *Target {
	ring := m.ring
	n := uint64(len(ring))
	for i := range n {
		t := ring[(start+i)%n]
		if t != avoid && t.available(p.now) {
			return t
		}
	}
	return p.fallback(m, avoid)
}

// fallback is the choice when no weighted target but avoid is available:
// an available member of weight 0, else avoid when it is available.
func (p *Pool) fallback(m *membership, avoid *Target) *Target {
	if m.zero {
		for i, t := range m.targets {
			if m.weights[i] == 0 && t != avoid && t.available(p.now) {
				return t
			}
		}
	}
	if avoid != nil && avoid.available(p.now) {
		return avoid
	}
	return nil
}

// pickLeast is power of two choices on the in-flight counts.
func (p *Pool) pickLeast(m *membership, avoid *Target) *Target {
	ts := m.ring // weighted draws
	n := len(ts)
	if n <= 1 {
		return p.pickFrom(m, 0, avoid)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := ts[i], ts[j]
	okA := a != avoid && a.available(p.now)
	okB := b != avoid && b.available(p.now)
	switch {
	case okA && okB:
		if b.inFlight.Load() < a.inFlight.Load() {
			return b
		}
		return a
	case okA:
		return a
	case okB:
		return b
	}
	// Both drawn targets are out: take the least loaded of the rest.
	var best *Target
	for i, t := range m.targets {
		if m.zero && m.weights[i] == 0 {
			continue
		}
		if t != avoid && t.available(p.now) && (best == nil || t.inFlight.Load() < best.inFlight.Load()) {
			best = t
		}
	}
	if best == nil {
		best = p.fallback(m, avoid)
	}
	return best
}

// pickHash is rendezvous (highest random weight) hashing: a key keeps its
// target while that target is available, and only the keys of a target
// that leaves move.
//
// With weights (members of an SRV record set) it is weighted rendezvous
// hashing: each member wins for a share of the keys proportional to its
// weight, and still only the keys of a member that leaves move.
func (p *Pool) pickHash(m *membership, key uint64, avoid *Target) *Target {
	var best *Target
	if m.weights == nil {
		var bestScore uint64
		for _, t := range m.targets {
			if t == avoid || !t.available(p.now) {
				continue
			}
			if s := mix(key ^ t.seed); best == nil || s > bestScore {
				best, bestScore = t, s
			}
		}
	} else {
		var bestScore float64
		for i, t := range m.targets {
			if m.weights[i] == 0 || t == avoid || !t.available(p.now) {
				continue
			}
			if s := weightedScore(mix(key^t.seed), m.weights[i]); best == nil || s > bestScore {
				best, bestScore = t, s
			}
		}
	}
	if best == nil {
		best = p.fallback(m, avoid)
	}
	return best
}

// Status returns the state of every target.
func (p *Pool) Status() []TargetStatus {
	ts := p.members.Load().targets
	out := make([]TargetStatus, len(ts))
	now := p.now().UnixNano()
	for i, t := range ts {
		out[i] = TargetStatus{
			URL:      t.raw,
			Healthy:  t.healthy.Load(),
			Ejected:  now < t.ejectedUntil.Load(),
			InFlight: t.inFlight.Load(),
		}
	}
	return out
}

// Start launches the active health checker when one is configured, and
// the resolution loop of a discovered pool, whose first resolution closes
// Resolved. It is safe to call more than once.
func (p *Pool) Start() {
	p.startOnce.Do(func() {
		if p.disc != nil {
			p.wg.Add(1)
			go p.discoverLoop(p.resolved)
		}
		if p.spec.HealthCheck != nil {
			p.wg.Add(1)
			go p.checkLoop()
		}
	})
}

// Close stops the health checker and the resolution loop, waits for them
// and closes idle connections. It is safe to call more than once.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.fast.CloseIdleConnections()
	})
}
