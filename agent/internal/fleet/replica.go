package fleet

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gitgate/gitgate/schemas/rebinding"
)

// ReplicaPath is where a replica's webhook listener serves its Replica.
const ReplicaPath = "/v1/replica"

// Pin scopes.
const (
	// ScopeFleet is a pin every replica obeys (kept in Git).
	ScopeFleet = "fleet"
	// ScopeLocal is a pin kept in this replica's state dir only.
	ScopeLocal = "local"
)

// Replica is what one replica says about itself. It holds no secret: no
// token, no URL with credentials, no config content.
type Replica struct {
	// AgentVersion is the agent binary's version.
	AgentVersion string `json:"agentVersion"`
	// Gateway is what the gateway runs, asked when the Replica is served.
	Gateway Gateway `json:"gateway"`
	// Mode is "tracking" or "pinned".
	Mode string `json:"mode"`
	// Pin is the pin in force, nil when tracking.
	Pin *Pin `json:"pin,omitempty"`
	// Desired is the commit the agent wants the gateway to run.
	Desired string `json:"desired,omitempty"`
	// AppliedAt is when Desired was applied.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// BranchHead is the branch tip seen by the last head check.
	BranchHead string `json:"branchHead,omitempty"`
	// LastError is the last sync error, "" when the last pass went well.
	LastError string `json:"lastError,omitempty"`
	// Time is the replica's clock when it answered, so lag is measured
	// without trusting clocks to agree.
	Time time.Time `json:"time"`
}

// Gateway is the gateway's answer to a status call.
type Gateway struct {
	// Reachable is false when the gateway did not answer.
	Reachable bool `json:"reachable"`
	// Version is the commit it runs.
	Version string `json:"version,omitempty"`
	// Digest is the digest of the bundle it runs.
	Digest string `json:"digest,omitempty"`
	// Error is why it did not answer.
	Error string `json:"error,omitempty"`
}

// Pin is the pin in force on a replica.
type Pin struct {
	// SHA is the pinned commit.
	SHA string `json:"sha"`
	// Scope is ScopeFleet or ScopeLocal.
	Scope string `json:"scope"`
	// Hold is true when only `agent resume` lifts the pin.
	Hold bool `json:"hold,omitempty"`
	// Since is when the pin was set.
	Since time.Time `json:"since,omitzero"`
}

// Handler serves GET /v1/replica from report. Requests whose Host is a
// name other than localhost or one of names are answered 421, so a web
// page whose name an attacker re-points at the agent (DNS rebinding)
// cannot read it; IP literals are always served.
func Handler(report func(ctx context.Context) Replica, names []string) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, n := range names {
		allowed[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rebinding.HostAllowed(r.Host, allowed) {
			http.Error(w, "host not allowed: query a replica by IP or by its --peers name", http.StatusMisdirectedRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(report(ctx))
	})
}
