package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// DiscoveryStatus is the state of a discovered pool's resolution, in the
// admin API's shape.
type DiscoveryStatus = client.DiscoveryStatus

// Results of one resolution, as status and metrics name them.
const (
	ResultOK     = "ok"
	ResultEmpty  = "empty"
	ResultFailed = "failed"
	statePending = "pending"
)

// FirstResolutionWait is how long the runtime waits for the first
// resolution of new discovered pools (all at once) before it serves with
// them; a pool without members answers 503 until a resolution gives some.
const FirstResolutionWait = 2 * time.Second

const (
	// drainPoll is how often draining members are checked for requests
	// in flight; a member is closed no sooner than one poll after it left.
	drainPoll = 250 * time.Millisecond
)

// discovery is the resolution state of a pool with a dns:// or srv://
// target. Its fields are guarded by mu, which also serializes membership
// changes; Pick never takes it.
type discovery struct {
	target   rules.DiscoveryTarget
	raw      string
	scheme   string // of the members' URLs
	resolver *Resolver
	minI     time.Duration
	maxI     time.Duration
	conns    *connTracker // the slow path's connections, by address

	mu          sync.Mutex
	draining    map[*Target]time.Time // members that left, and when
	state       string
	lastErr     string
	lastErrAt   time.Time
	lastSuccess time.Time
	next        time.Time
	fails       int // consecutive resolutions without members
	counts      map[string]uint64
}

// newDiscovery returns the discovery state of a pool whose target is dt;
// it makes tr track its connections.
func newDiscovery(dt rules.DiscoveryTarget, spec schemas.Upstream, opts Options, tr *http.Transport) *discovery {
	d := &discovery{
		target:   dt,
		raw:      spec.Targets[0],
		scheme:   memberScheme(spec),
		resolver: opts.Resolver,
		minI:     schemas.DefaultDiscoveryMinInterval,
		maxI:     schemas.DefaultDiscoveryMaxInterval,
		conns:    &connTracker{conns: map[string]map[*trackedConn]struct{}{}},
		draining: map[*Target]time.Time{},
		state:    statePending,
		counts:   map[string]uint64{ResultOK: 0, ResultEmpty: 0, ResultFailed: 0},
	}
	if c := spec.Discovery; c != nil {
		if c.MinInterval > 0 {
			d.minI = c.MinInterval.D()
		}
		if c.MaxInterval > 0 {
			d.maxI = c.MaxInterval.D()
		}
	}
	d.maxI = max(d.maxI, d.minI)
	tr.DialContext = d.conns.wrap(tr.DialContext)
	return d
}

// memberScheme is the scheme of a discovered pool's members: https for
// protocol h2, and for http1 with a tls section; http otherwise.
func memberScheme(spec schemas.Upstream) string {
	switch {
	case spec.Protocol == schemas.ProtocolH2:
		return "https"
	case spec.Protocol == schemas.ProtocolH2C:
		return "http"
	case spec.TLS != nil:
		return "https"
	}
	return "http"
}

// discoverLoop resolves the pool's target when due (after the smallest
// TTL of the last answer, within the discovery bounds; after a failure, at
// minInterval doubled per failure in a row up to maxInterval), and closes
// drained members, until Close. first is closed after the first
// resolution.
func (p *Pool) discoverLoop(first chan struct{}) {
	defer p.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var next time.Time
	for {
		if now := time.Now(); !now.Before(next) {
			next = now.Add(p.resolve())
			if first != nil {
				close(first)
				first = nil
			}
		}
		wait := time.Until(next)
		if p.reap() > 0 {
			wait = min(wait, drainPoll)
		}
		timer.Reset(max(wait, 0))
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// MaxDiscoveredMembers bounds the members a dns:// or srv:// target gives
// an upstream; the addresses of a larger answer beyond the first (sorted)
// are left out.
const MaxDiscoveredMembers = 256

// maxSRVRecords bounds the SRV records of one answer whose targets are
// resolved, lowest priority first, so that a hostile answer cannot make
// one resolution send thousands of queries.
const maxSRVRecords = 64

// resolve asks DNS once, updates the members on an answer with
// addresses, and returns the time until the next resolution.
func (p *Pool) resolve() time.Duration {
	d := p.disc
	ctx, cancel := context.WithTimeout(p.ctx, 4*resolveTimeout)
	defer cancel()
	var res resolution
	var err error
	if d.target.Scheme == rules.SchemeSRV {
		res, err = d.resolver.lookupSRV(ctx, d.target.Name)
	} else {
		res, err = d.resolver.lookupHost(ctx, d.target.Name, d.target.Port)
	}
	if p.ctx.Err() != nil {
		return d.maxI // closing: the result says nothing
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		result := ResultFailed
		if errors.Is(err, errEmpty) {
			result = ResultEmpty
		}
		d.counts[result]++
		d.state, d.lastErr, d.lastErrAt = result, err.Error(), now
		d.fails++
		wait := d.minI
		for i := 1; i < d.fails && wait < d.maxI; i++ {
			wait *= 2
		}
		wait = min(wait, d.maxI)
		d.next = now.Add(wait)
		p.log.Warn().Err(err).Str("target", d.raw).Str("result", result).Int("members", len(p.members.Load().targets)).
			Msg("dns resolution gave no members: keeping the last good set")
		return wait
	}
	d.counts[ResultOK]++
	d.state, d.lastSuccess, d.fails = ResultOK, now, 0
	addrs := sortAddrs(res.addrs)
	if len(addrs) > MaxDiscoveredMembers {
		// A hostile or broken DNS answer must not grow the pool (and its
		// health checks) without bound: every replica keeps the same
		// first addresses, sorted.
		p.log.Warn().Str("target", d.raw).Int("addresses", len(addrs)).Int("kept", MaxDiscoveredMembers).
			Msg("dns answer holds more addresses than an upstream takes: keeping the first")
		addrs = addrs[:MaxDiscoveredMembers]
	}
	p.setMembersLocked(addrs, res.weighted)
	wait := min(max(res.ttl, d.minI), d.maxI)
	d.next = now.Add(wait)
	return wait
}

// setMembersLocked makes addrs the pool's members, weighted by their SRV
// weights when weighted holds: a member that stays
// keeps its Target (health, ejection, in-flight count, connections), a
// member that left starts draining, and one that comes back while draining
// is taken back. d.mu is held.
func (p *Pool) setMembersLocked(addrs []addr, weighted bool) {
	d := p.disc
	known := map[string]*Target{}
	for t := range d.draining {
		known[t.URL.Host] = t
	}
	for _, t := range p.members.Load().targets {
		known[t.URL.Host] = t
	}
	next := make([]*Target, 0, len(addrs))
	var weights []uint32
	if weighted {
		weights = make([]uint32, len(addrs))
		for i, a := range addrs {
			weights[i] = a.weight
		}
	}
	var added []string
	for _, a := range addrs {
		host := a.String()
		if t := known[host]; t != nil {
			delete(known, host)
			if t.draining.Load() {
				delete(d.draining, t)
				t.draining.Store(false)
				added = append(added, t.raw)
			}
			next = append(next, t)
			continue
		}
		raw := d.scheme + "://" + host
		u := &url.URL{Scheme: d.scheme, Host: host}
		t := newTarget(u, raw)
		next = append(next, t)
		added = append(added, raw)
	}
	var removed []string
	now := time.Now()
	for _, t := range known {
		if !t.draining.Load() {
			t.draining.Store(true)
			d.draining[t] = now
			removed = append(removed, t.raw)
		}
	}
	p.members.Store(newMembership(next, weights))
	p.fast.sync(p.withDraining(next))
	if len(added) > 0 || len(removed) > 0 {
		p.log.Info().Str("target", d.raw).Strs("added", added).Strs("draining", removed).Int("members", len(next)).
			Msg("upstream members changed")
	}
}

// withDraining returns members plus the draining members; d.mu is held.
func (p *Pool) withDraining(members []*Target) []*Target {
	if len(p.disc.draining) == 0 {
		return members
	}
	all := append(make([]*Target, 0, len(members)+len(p.disc.draining)), members...)
	for t := range p.disc.draining {
		all = append(all, t)
	}
	return all
}

// reap forgets the draining members that have no request in flight and
// left at least drainPoll ago, closing their connections, and returns how
// many are still draining.
func (p *Pool) reap() int {
	d := p.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.draining) == 0 {
		return 0
	}
	now := time.Now()
	done := 0
	for t, since := range d.draining {
		if t.InFlight() != 0 || now.Sub(since) < drainPoll {
			continue
		}
		delete(d.draining, t)
		d.conns.closeAddr(hostPort(t.URL.Host))
		done++
		p.log.Info().Str("target", t.raw).Msg("drained member closed")
	}
	if done > 0 {
		p.fast.sync(p.withDraining(p.members.Load().targets))
	}
	return len(d.draining)
}

// Resolved is closed once the pool has made its first resolution, whatever
// its result; at once for a pool of static targets.
func (p *Pool) Resolved() <-chan struct{} { return p.resolved }

// Discovery returns the state of the pool's dns:// or srv:// target, nil
// for a pool of static targets.
func (p *Pool) Discovery() *DiscoveryStatus {
	d := p.disc
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := &DiscoveryStatus{
		Target:         d.raw,
		State:          d.state,
		Members:        len(p.members.Load().targets),
		Draining:       len(d.draining),
		LastSuccess:    d.lastSuccess.UTC(),
		LastError:      d.lastErr,
		LastErrorAt:    d.lastErrAt.UTC(),
		NextResolution: d.next.UTC(),
		Resolutions:    make(map[string]uint64, len(d.counts)),
	}
	if d.lastSuccess.IsZero() {
		st.LastSuccess = time.Time{}
	}
	if d.lastErrAt.IsZero() {
		st.LastErrorAt = time.Time{}
	}
	if d.next.IsZero() {
		st.NextResolution = time.Time{}
	}
	for k, v := range d.counts {
		st.Resolutions[k] = v
	}
	return st
}

// connTracker remembers the open connections of the pool's http.Transport
// by address, so that a drained member's kept-alive connections are
// closed when it leaves instead of idling until their timeout.
type connTracker struct {
	mu    sync.Mutex
	conns map[string]map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	addr string
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		if set := c.t.conns[c.addr]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(c.t.conns, c.addr)
			}
		}
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

// wrap returns a dial function that tracks what next dials.
func (ct *connTracker) wrap(next func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := next(ctx, network, address)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: ct, addr: strings.ToLower(address)}
		ct.mu.Lock()
		set := ct.conns[tc.addr]
		if set == nil {
			set = map[*trackedConn]struct{}{}
			ct.conns[tc.addr] = set
		}
		set[tc] = struct{}{}
		ct.mu.Unlock()
		return tc, nil
	}
}

// closeAddr closes every tracked connection to address.
func (ct *connTracker) closeAddr(address string) {
	ct.mu.Lock()
	set := ct.conns[strings.ToLower(address)]
	delete(ct.conns, strings.ToLower(address))
	ct.mu.Unlock()
	for c := range set {
		_ = c.Conn.Close()
	}
}
