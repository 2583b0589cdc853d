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
	// LastRejected is the last bundle refused since the gateway started.
	LastRejected *Rejection `json:"lastRejected,omitempty"`
	// StartedAt is when the gateway process started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// LastKnownGood says whether the running bundle is saved for the next
	// start. Nil when the gateway persists nothing.
	LastKnownGood *LastKnownGood `json:"lastKnownGood,omitempty"`
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
