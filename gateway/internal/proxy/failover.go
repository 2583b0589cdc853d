package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Failover is a failover upstream: an ordered list of groups (plain
// upstreams, primary first). A request goes to the active group, the first
// whose pool has at least minHealthy available targets (healthy by the
// active health check, not ejected by outlier detection, breaker not
// open). When no group has that many, the first group with any available
// target takes the traffic; when none has any, the active group stays as
// it was and requests get the usual 503.
//
// The active group is worked out from the pools' state on every request
// (and on every status read and metrics scrape), so traffic fails over
// and back by health and outlier state alone, never by a config change. A
// change of the active group is logged and counted when it is noticed.
//
// A retry moves on: it goes to the first group after the one whose attempt
// failed that can take it, and only when no later group can does it stay
// in the same group (on another target when there is one).
type Failover struct {
	name       string
	groups     []*Forwarder
	names      []string
	minHealthy int
	fw         *Forwarder // what routes forward to
	active     atomic.Int32
	changes    atomic.Uint64
	log        zerolog.Logger
	counter    *prometheus.CounterVec // nil without metrics
}

// NewFailover builds failover upstream name from spec (defaults applied).
// upstreams is the config's upstreams and forwarders the snapshot's plain
// upstreams by name. prev, when not nil, is the same upstream in the
// running snapshot: its active group and count of changes carry over, so
// an apply does not look like a failover. Problems are returned as a
// *schemas.InvalidError with paths under "upstreams.<name>".
func NewFailover(name string, spec schemas.Upstream, upstreams map[string]schemas.Upstream, forwarders map[string]*Forwarder, opts *Options, prev *Failover) (*Failover, error) {
	base := "upstreams." + name
	var diags []schemas.Diagnostic
	if spec.Failover == nil {
		return nil, &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{Path: base + ".failover", Message: "not a failover upstream"}}}
	}
	for _, v := range rules.Upstream(spec) {
		diags = append(diags, v.At(base))
	}
	for _, v := range rules.Failover(*spec.Failover, upstreams) {
		diags = append(diags, v.At(base))
	}
	if len(diags) > 0 {
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}
	fo := &Failover{
		name:       name,
		names:      slices.Clone(spec.Failover.Groups),
		minHealthy: max(spec.Failover.MinHealthy, 1),
		log:        opts.Logger.With().Str("component", "failover").Str("upstream", name).Logger(),
	}
	for _, g := range fo.names {
		fw, ok := forwarders[g]
		if !ok {
			// The group's own pool failed to build: that error is
			// reported at the group.
			return nil, &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{Path: base + ".failover.groups",
				Message: fmt.Sprintf("group %q could not be built", g)}}}
		}
		fo.groups = append(fo.groups, fw)
	}
	if prev != nil {
		if i := slices.Index(fo.names, prev.ActiveGroup()); i >= 0 {
			fo.active.Store(int32(i))
		}
		fo.changes.Store(prev.changes.Load())
	}
	if opts.Metrics != nil {
		fo.counter = opts.Metrics.failovers
	}
	fo.fw = &Forwarder{opts: opts, failover: fo,
		noHost: noHealthyBody(name), breakerOpen: breakerOpenBody(name), failed: upstreamFailedBody(name)}
	return fo, nil
}

// Forwarder returns what routes naming the failover upstream forward to.
func (fo *Failover) Forwarder() *Forwarder { return fo.fw }

// Name returns the failover upstream's name.
func (fo *Failover) Name() string { return fo.name }

// Groups returns the names of the groups, primary first.
func (fo *Failover) Groups() []string { return slices.Clone(fo.names) }

// ActiveGroup works out the active group now (recording a change) and
// returns its name.
func (fo *Failover) ActiveGroup() string { return fo.names[fo.current()] }

// Changes returns how many times the active group changed, including the
// changes counted by the snapshots this one replaced.
func (fo *Failover) Changes() uint64 { return fo.changes.Load() }

// current returns the index of the active group, recording a change.
func (fo *Failover) current() int {
	best, fallback := -1, -1
	for i, g := range fo.groups {
		n := g.pool.Available()
		if n >= fo.minHealthy {
			best = i
			break
		}
		if n > 0 && fallback < 0 {
			fallback = i
		}
	}
	if best < 0 {
		best = fallback
	}
	old := int(fo.active.Load())
	if best < 0 || best == old {
		// Nothing can take traffic: keep the active group rather than
		// flap between groups that are all down.
		return old
	}
	if fo.active.CompareAndSwap(int32(old), int32(best)) {
		fo.changed(old, best)
	}
	return best
}

// changed logs and counts a change of the active group from old to now.
func (fo *Failover) changed(old, now int) {
	fo.changes.Add(1)
	if fo.counter != nil {
		fo.counter.WithLabelValues(fo.name, fo.names[old], fo.names[now]).Inc()
	}
	ev := fo.log.Warn()
	msg := "failover: active group changed to a later group"
	if now < old {
		ev = fo.log.Info()
		msg = "failback: active group changed to an earlier group"
	}
	ev.Str("from", fo.names[old]).Str("to", fo.names[now]).
		Int("fromAvailable", fo.groups[old].pool.Available()).
		Int("toAvailable", fo.groups[now].pool.Available()).
		Int("minHealthy", fo.minHealthy).
		Msg(msg)
}

// pick chooses the group and the target of one attempt on be. For a plain
// upstream it is be's pool. For a failover upstream, the first attempt
// starts at the active group and a retry (retry set, *group the group of
// the failed attempt) at the group after it; a group that cannot take the
// attempt (no target available, breaker open) passes it to the next, and
// a retry that finds no later group stays in its own. *group is set to
// the group picked. key is the request's hash key of a plain upstream.
func (be *backend) pick(r *http.Request, client netip.Addr, key uint64, avoid *upstream.Target, group *int, retry bool) (*Forwarder, *upstream.Target, error) {
	fo := be.fw.failover
	if fo == nil {
		t, err := be.fw.pool.Pick(key, avoid)
		return be.fw, t, err
	}
	start, last := fo.current(), -1
	if retry {
		start, last = *group+1, *group
	}
	var first error
	try := func(i int) (*Forwarder, *upstream.Target, error) {
		fw := fo.groups[i]
		var k uint64
		if h := fw.pool.HashOn(); h != nil {
			k = upstream.Key(r, h, client)
		}
		t, err := fw.pool.Pick(k, avoid)
		if err != nil && first == nil {
			first = err
		}
		return fw, t, err
	}
	for i := start; i < len(fo.groups); i++ {
		if fw, t, err := try(i); err == nil {
			*group = i
			return fw, t, nil
		}
	}
	if last >= 0 {
		if fw, t, err := try(last); err == nil {
			*group = last
			return fw, t, nil
		}
	}
	return nil, nil, first
}
