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
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	b.latency[i].Add(1)
}

// Fail counts an answer the gateway made because of cause.
func (b *Backend) Fail(cause Failure) { b.failures[cause].Add(1) }

// read returns the counts of b.
func (b *Backend) read() client.Counts {
	c := client.Counts{Latency: make([]uint64, len(b.latency))}
	c.Responses = client.ResponseClasses{
		None:     b.classes[0].Load(),
		Class1xx: b.classes[1].Load(),
		Class2xx: b.classes[2].Load(),
		Class3xx: b.classes[3].Load(),
		Class4xx: b.classes[4].Load(),
		Class5xx: b.classes[5].Load(),
	}
	r := c.Responses
	c.Requests = r.None + r.Class1xx + r.Class2xx + r.Class3xx + r.Class4xx + r.Class5xx
	c.Failures = client.Failures{
		NoHealthyTarget: b.failures[NoHealthyTarget].Load(),
		BreakerOpen:     b.failures[BreakerOpen].Load(),
		Timeout:         b.failures[Timeout].Load(),
		ConnectFailure:  b.failures[ConnectFailure].Load(),
		Reset:           b.failures[Reset].Load(),
	}
	for i := range b.latency {
		c.Latency[i] = b.latency[i].Load()
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

// read returns the route's traffic: each backend's, and their sum. Two
// backends to the same upstream are reported together.
func (r *Route) read() client.RouteTraffic {
	rt := client.RouteTraffic{Backends: make(map[string]client.Counts, len(r.backends))}
	for i, b := range r.backends {
		c := b.read()
		rt.Counts = sum(rt.Counts, c)
		if prior, ok := rt.Backends[r.upstream[i]]; ok {
			c = sum(prior, c)
		}
		rt.Backends[r.upstream[i]] = c
	}
	return rt
}

// sum returns a+b, with a fresh latency slice.
func sum(a, b client.Counts) client.Counts {
	out := client.Counts{
		Requests: a.Requests + b.Requests,
		Responses: client.ResponseClasses{
			Class1xx: a.Responses.Class1xx + b.Responses.Class1xx,
			Class2xx: a.Responses.Class2xx + b.Responses.Class2xx,
			Class3xx: a.Responses.Class3xx + b.Responses.Class3xx,
			Class4xx: a.Responses.Class4xx + b.Responses.Class4xx,
			Class5xx: a.Responses.Class5xx + b.Responses.Class5xx,
			None:     a.Responses.None + b.Responses.None,
		},
		Failures: client.Failures{
			NoHealthyTarget: a.Failures.NoHealthyTarget + b.Failures.NoHealthyTarget,
			BreakerOpen:     a.Failures.BreakerOpen + b.Failures.BreakerOpen,
			Timeout:         a.Failures.Timeout + b.Failures.Timeout,
			ConnectFailure:  a.Failures.ConnectFailure + b.Failures.ConnectFailure,
			Reset:           a.Failures.Reset + b.Failures.Reset,
		},
		Latency: make([]uint64, len(LatencyBounds)+1),
	}
	for i := range out.Latency {
		if i < len(a.Latency) {
			out.Latency[i] += a.Latency[i]
		}
		if i < len(b.Latency) {
			out.Latency[i] += b.Latency[i]
		}
	}
	return out
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
	for _, r := range s.routes {
		rt := r.read()
		t.Routes[r.name] = rt
		t.Total = sum(t.Total, rt.Counts)
	}
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
