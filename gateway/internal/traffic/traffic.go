// Package traffic counts what a config version serves: per route and per
// backend upstream of each route, the requests, the status classes the
// clients got, the answers the gateway made for a failed upstream, by
// cause, and a latency histogram. The counters are atomics in structs
// allocated when a snapshot is compiled, so the request path takes no lock
// and allocates nothing. The runtime keeps one Set per snapshot (and the
// previous snapshot's) and reads them into the admin API's
// client.TrafficReport.
package traffic

import (
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

// LatencyBounds are the upper bounds of the latency buckets; a last bucket
// holds longer requests. From 1 ms to 10 s, about three per decade.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Failure is a cause of an answer the gateway made for a failed upstream.
type Failure int

// Causes of Failure, as in client.Failures.
const (
	NoHealthyTarget Failure = iota
	BreakerOpen
	Timeout
	ConnectFailure
	Reset
	numFailures
)

// Backend counts one backend of one route. The zero value is ready.
type Backend struct {
	classes  [6]atomic.Uint64 // by status class; 0: no status
	tooMany  atomic.Uint64    // 429s among the 4xx
	failures [numFailures]atomic.Uint64
	latency  [len(LatencyBounds) + 1]atomic.Uint64
}

// Done counts a request that ended with status (0 when the client got
// none) after d.
func (b *Backend) Done(status int, d time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	b.classes[class].Add(1)
	if status == 429 {
		b.tooMany.Add(1)
	}
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	b.latency[i].Add(1)
}

// Fail counts an answer the gateway made because of cause.
func (b *Backend) Fail(cause Failure) { b.failures[cause].Add(1) }

// counts is a plain copy of counters, summed before they become a
// client.Counts.
type counts struct {
	classes  [6]uint64
	tooMany  uint64
	failures [numFailures]uint64
	latency  [len(LatencyBounds) + 1]uint64
}

func (c *counts) add(o *counts) {
	for i := range c.classes {
		c.classes[i] += o.classes[i]
	}
	c.tooMany += o.tooMany
	for i := range c.failures {
		c.failures[i] += o.failures[i]
	}
	for i := range c.latency {
		c.latency[i] += o.latency[i]
	}
}

// wire returns c as the admin API shows it.
func (c *counts) wire() client.Counts {
	out := client.Counts{
		Responses: client.ResponseClasses{
			None:      c.classes[0],
			Class1xx:  c.classes[1],
			Class2xx:  c.classes[2],
			Class3xx:  c.classes[3],
			Class4xx:  c.classes[4],
			Class5xx:  c.classes[5],
			Status429: c.tooMany,
		},
		Failures: client.Failures{
			NoHealthyTarget: c.failures[NoHealthyTarget],
			BreakerOpen:     c.failures[BreakerOpen],
			Timeout:         c.failures[Timeout],
			ConnectFailure:  c.failures[ConnectFailure],
			Reset:           c.failures[Reset],
		},
		Latency: append([]uint64(nil), c.latency[:]...),
	}
	for _, n := range c.classes {
		out.Requests += n
	}
	return out
}

// read returns the counts of b.
func (b *Backend) read() counts {
	var c counts
	for i := range b.classes {
		c.classes[i] = b.classes[i].Load()
	}
	c.tooMany = b.tooMany.Load()
	for i := range b.failures {
		c.failures[i] = b.failures[i].Load()
	}
	for i := range b.latency {
		c.latency[i] = b.latency[i].Load()
	}
	return c
}

// Route counts one route: one Backend per backend upstream.
type Route struct {
	name     string
	upstream []string
	backends []*Backend
}

// NewRoute returns the counters of route name whose backends go to
// upstreams, in order (Backend(i) counts upstreams[i]).
func NewRoute(name string, upstreams []string) *Route {
	r := &Route{name: name, upstream: upstreams, backends: make([]*Backend, len(upstreams))}
	for i := range r.backends {
		r.backends[i] = &Backend{}
	}
	return r
}

// Backend returns the counters of the route's i-th backend.
func (r *Route) Backend(i int) *Backend { return r.backends[i] }

// read returns the route's traffic, each backend's and their sum, and
// the sum as counts. Two backends to the same upstream are reported
// together.
func (r *Route) read() (client.RouteTraffic, counts) {
	var total counts
	byUpstream := make(map[string]*counts, len(r.backends))
	for i, b := range r.backends {
		c := b.read()
		total.add(&c)
		if prior := byUpstream[r.upstream[i]]; prior != nil {
			prior.add(&c)
		} else {
			byUpstream[r.upstream[i]] = &c
		}
	}
	rt := client.RouteTraffic{Counts: total.wire(), Backends: make(map[string]client.Counts, len(byUpstream))}
	for name, c := range byUpstream {
		rt.Backends[name] = c.wire()
	}
	return rt, total
}

// Set is the traffic of one snapshot: its routes' counters, fixed when the
// snapshot is compiled.
type Set struct {
	routes []*Route
}

// NewSet returns the traffic of a snapshot serving routes.
func NewSet(routes []*Route) *Set { return &Set{routes: routes} }

// Read returns the set's traffic as version, served from since until until
// (zero while it runs).
func (s *Set) Read(version string, since, until time.Time) *client.Traffic {
	t := &client.Traffic{Version: version, Since: since, Until: until, Routes: make(map[string]client.RouteTraffic, len(s.routes))}
	var total counts
	for _, r := range s.routes {
		rt, c := r.read()
		t.Routes[r.name] = rt
		total.add(&c)
	}
	t.Total = total.wire()
	return t
}

// BoundsSeconds returns LatencyBounds in seconds, as a report shows them.
func BoundsSeconds() []float64 {
	out := make([]float64, len(LatencyBounds))
	for i, b := range LatencyBounds {
		out[i] = b.Seconds()
	}
	return out
}
