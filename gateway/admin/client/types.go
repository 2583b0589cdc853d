package client

import (
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// Applied is the answer to a successful PUT /v1/bundle.
type Applied struct {
	// Version of the bundle now running.
	Version string `json:"version"`
	// Digest of the bundle now running.
	Digest string `json:"digest,omitempty"`
	// AppliedAt is when the running bundle was applied. Zero when Unchanged
	// and the gateway did not record it.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// Unchanged is true when the pushed digest equalled the running one and
	// nothing was done.
	Unchanged bool `json:"unchanged,omitempty"`
	// Warning reports a problem that did not stop the apply, such as a
	// failure to persist the last-known-good copy.
	Warning string `json:"warning,omitempty"`
}

// Rejection records a bundle the gateway refused.
type Rejection struct {
	// Version of the refused bundle; empty when it had none.
	Version string `json:"version,omitempty"`
	// Digest the refused bundle claimed.
	Digest string `json:"digest,omitempty"`
	// At is when it was refused.
	At time.Time `json:"at"`
	// Error is the summary of why.
	Error string `json:"error"`
	// Diagnostics lists every problem found.
	Diagnostics []schemas.Diagnostic `json:"diagnostics,omitempty"`
}

// TargetStatus is the health of one upstream target.
type TargetStatus struct {
	// URL of the target.
	URL string `json:"url"`
	// Healthy is false when active health checks mark it down.
	Healthy bool `json:"healthy"`
	// Ejected is true while outlier detection keeps it out.
	Ejected bool `json:"ejected,omitempty"`
	// InFlight is the number of requests being forwarded to it.
	InFlight int64 `json:"inFlight"`
}

// DiscoveryStatus is the state of an upstream's dns:// or srv:// target.
type DiscoveryStatus struct {
	// Target is the discovery target as configured.
	Target string `json:"target"`
	// State is the outcome of the last resolution: "pending" before the
	// first, "ok", "empty" (an answer without an address) or "failed".
	// After "empty" and "failed" the pool keeps its last good members.
	State string `json:"state"`
	// Members is the number of members the pool serves with.
	Members int `json:"members"`
	// Draining is the number of members that left and are finishing
	// their requests.
	Draining int `json:"draining,omitempty"`
	// LastSuccess is when a resolution last gave members.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastError says why the last resolution that did not give members
	// failed; empty when none has failed.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// NextResolution is when the target is resolved again.
	NextResolution time.Time `json:"nextResolution,omitzero"`
	// Resolutions counts the resolutions by result: ok, empty, failed.
	Resolutions map[string]uint64 `json:"resolutions"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	// Ready is true once a config is loaded.
	Ready bool `json:"ready"`
	// Version of the running bundle; empty before any.
	Version string `json:"version,omitempty"`
	// Digest of the running bundle.
	Digest string `json:"digest,omitempty"`
	// Source of the running bundle.
	Source *schemas.Source `json:"source,omitempty"`
	// AppliedAt is when the running bundle was applied.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// Routes is the number of routes served.
	Routes int `json:"routes"`
	// Upstreams maps an upstream name to the state of its targets.
	Upstreams map[string][]TargetStatus `json:"upstreams,omitempty"`
	// Breakers maps an upstream name to its circuit breaker state
	// ("closed", "open", "half-open").
	Breakers map[string]string `json:"breakers,omitempty"`
	// Discovery maps an upstream with a dns:// or srv:// target to the
	// state of its resolution.
	Discovery map[string]DiscoveryStatus `json:"discovery,omitempty"`
	// LastRejected is the last bundle refused since the gateway started.
	LastRejected *Rejection `json:"lastRejected,omitempty"`
	// StartedAt is when the gateway process started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// LastKnownGood says whether the running bundle is saved for the next
	// start. Nil when the gateway persists nothing.
	LastKnownGood *LastKnownGood `json:"lastKnownGood,omitempty"`
	// Traffic is what the running config version and the one before it
	// served. Nil before the first apply.
	Traffic *TrafficReport `json:"traffic,omitempty"`
	// JWKS maps a jwt policy with a jwksURL to the state of its key set.
	JWKS map[string]JWKSStatus `json:"jwks,omitempty"`
	// Failover maps a failover upstream to its groups and the active one.
	Failover map[string]FailoverStatus `json:"failover,omitempty"`
	// Cache is the response cache of all routes. Nil before the first
	// apply.
	Cache *CacheStatus `json:"cache,omitempty"`
}

// FailoverStatus is the state of a failover upstream.
type FailoverStatus struct {
	// Groups are the upstreams it fails over between, primary first.
	Groups []string `json:"groups"`
	// Active is the group taking traffic now.
	Active string `json:"active"`
	// Changes counts the changes of the active group since the gateway
	// started (carried over applies that keep the upstream).
	Changes uint64 `json:"changes"`
}

// CacheStatus is the state of the gateway's response cache.
type CacheStatus struct {
	// Entries is the number of stored responses.
	Entries int `json:"entries"`
	// Bytes is their estimated memory; MaxBytes is --cache-max-bytes.
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"maxBytes"`
}

// JWKSStatus is the state of a jwt policy's remote key set. A set whose
// LastError is not empty is stale: the keys of LastSuccess keep serving.
type JWKSStatus struct {
	// URL the keys are fetched from.
	URL string `json:"url"`
	// Keys is the number of keys served; 0 before the first good fetch
	// (tokens are then answered 503).
	Keys int `json:"keys"`
	// LastSuccess is when the served set was fetched.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastError is the error of the last fetch, empty when it succeeded.
	LastError string `json:"lastError,omitempty"`
}

// TrafficReport is the traffic of the running config version and of the
// version it replaced, so that a new version can be judged against the
// old one on the same routes.
type TrafficReport struct {
	// LatencyBoundsSeconds are the upper bounds of the latency buckets of
	// every Counts in the report; the last bucket has no upper bound.
	LatencyBoundsSeconds []float64 `json:"latencyBoundsSeconds"`
	// Current is the running version's traffic since it was applied.
	Current *Traffic `json:"current,omitempty"`
	// Previous is the traffic of the version that ran before Current, from
	// its apply until it was replaced (requests it still had in flight
	// then are counted when they end). Nil until a second version runs;
	// a gateway restart starts afresh.
	Previous *Traffic `json:"previous,omitempty"`
}

// Traffic is what one config version served, per route and per backend
// upstream of each route. Only requests that the route's policies let
// through are counted: a policy's refusal (401, 403, 429) never is.
type Traffic struct {
	// Version of the config.
	Version string `json:"version"`
	// Since is when the version started serving.
	Since time.Time `json:"since"`
	// Until is when it was replaced; zero while it runs.
	Until time.Time `json:"until,omitzero"`
	// Total is the sum over every route.
	Total Counts `json:"total"`
	// Routes maps a route name to its traffic. Watch events leave it out
	// (their size must not grow with the config); GET /v1/status has it.
	Routes map[string]RouteTraffic `json:"routes,omitempty"`
}

// Totals returns a copy of r without the per-route traffic, as watch
// events carry it.
func (r *TrafficReport) Totals() *TrafficReport {
	if r == nil {
		return nil
	}
	out := *r
	for _, t := range []**Traffic{&out.Current, &out.Previous} {
		if *t != nil {
			c := **t
			c.Routes = nil
			*t = &c
		}
	}
	return &out
}

// RouteTraffic is one route's traffic: the sum over its backends, and each
// backend (by upstream name) on its own.
type RouteTraffic struct {
	Counts
	// Backends maps an upstream name to the traffic the route sent it.
	Backends map[string]Counts `json:"backends"`
}

// Counts are the traffic facts of one route or backend.
type Counts struct {
	// Requests is the number of requests that ended.
	Requests uint64 `json:"requests"`
	// Responses counts them by the status class the client got.
	Responses ResponseClasses `json:"responses"`
	// Failures counts the answers the gateway made for a failed upstream.
	Failures Failures `json:"failures"`
	// Latency counts the requests by duration (time to the end of the
	// response), one count per bucket of LatencyBoundsSeconds plus one
	// for longer.
	Latency []uint64 `json:"latency"`
}

// ResponseClasses counts responses by status class. None is a request
// that got no status at all (the client left first).
type ResponseClasses struct {
	Class1xx uint64 `json:"1xx"`
	Class2xx uint64 `json:"2xx"`
	Class3xx uint64 `json:"3xx"`
	Class4xx uint64 `json:"4xx"`
	Class5xx uint64 `json:"5xx"`
	None     uint64 `json:"none"`
	// Status429 counts the upstream's 429s among Class4xx, so that a
	// verdict counting 4xx as errors can leave them out (a policy's own
	// 429 is never counted at all).
	Status429 uint64 `json:"429"`
}

// Failures counts answers the gateway made itself because an upstream
// failed, by cause. An upstream's own 5xx passed on is not among them
// (it is in Responses).
type Failures struct {
	// NoHealthyTarget: no target of the upstream took traffic (503).
	NoHealthyTarget uint64 `json:"noHealthyTarget"`
	// BreakerOpen: the upstream's circuit breaker was open (503).
	BreakerOpen uint64 `json:"breakerOpen"`
	// Timeout: the route's timeout or the last try's timeout (504).
	Timeout uint64 `json:"timeout"`
	// ConnectFailure: no connection to a target could be made (502).
	ConnectFailure uint64 `json:"connectFailure"`
	// Reset: the upstream broke the connection off, before or during the
	// response (502, or a cut body).
	Reset uint64 `json:"reset"`
}

// LastKnownGood is the state of the gateway's last-known-good copy.
type LastKnownGood struct {
	// SavedVersion is the version on disk: the last one saved, or the one
	// restored at start. Empty when none.
	SavedVersion string `json:"savedVersion,omitempty"`
	// SavedAt is when SavedVersion was saved; zero when it was restored.
	SavedAt time.Time `json:"savedAt,omitzero"`
	// Error says why the last save failed (a full disk, say); empty when it
	// succeeded. While it is set, a restart would come back with
	// SavedVersion, not the running version.
	Error string `json:"error,omitempty"`
	// At is when the last save was attempted; zero before any.
	At time.Time `json:"at,omitzero"`
}

// ErrorBody is the JSON body of every 4xx and 5xx answer of the admin API.
type ErrorBody struct {
	// Error says what went wrong.
	Error string `json:"error"`
	// Diagnostics lists every problem of a refused bundle (422 only).
	Diagnostics []schemas.Diagnostic `json:"diagnostics,omitempty"`
	// CurrentVersion is the running version (412 only).
	CurrentVersion string `json:"currentVersion,omitempty"`
}

// Watch event types sent by GET /v1/watch as SSE "event:" names.
const (
	// EventApplied follows a successful apply; Data is the new state.
	EventApplied = "applied"
	// EventRejected follows a refused bundle; Data.LastRejected says why.
	EventRejected = "rejected"
	// EventReset carries the full current state. It is sent first on a new
	// stream and in place of the missed events when Last-Event-ID is no
	// longer in the gateway's buffer.
	EventReset = "reset"
)

// WatchState is the data of a watch event and the body of a long-poll answer.
type WatchState struct {
	// Version of the running bundle; empty before any.
	Version string `json:"version,omitempty"`
	// Digest of the running bundle.
	Digest string `json:"digest,omitempty"`
	// AppliedAt is when the running bundle was applied.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// LastRejected is the last refused bundle, if any.
	LastRejected *Rejection `json:"lastRejected,omitempty"`
	// Traffic is the traffic report at the time of the event, totals
	// only (GET /v1/status has it live and per route). Nil when the
	// gateway reports none.
	Traffic *TrafficReport `json:"traffic,omitempty"`
}

// WatchEvent is one server-sent event of GET /v1/watch.
type WatchEvent struct {
	// ID grows with every event of one gateway process.
	ID uint64
	// Type is EventApplied, EventRejected or EventReset.
	Type string
	// State is the decoded data of the event.
	State WatchState
}
