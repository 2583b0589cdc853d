package fleet

import (
	"fmt"
	"time"
)

// Verdict is the fleet as a whole.
type Verdict struct {
	// Desired is the fleet's desired commit: the newest decision among
	// replicas not pinned locally (the last commit any of them applied).
	Desired string `json:"desired,omitempty"`
	// Versions counts the replicas per version their gateways run.
	Versions map[string]int `json:"versions"`
	// Healthy is false when a replica is unreachable, drifted or lags.
	Healthy bool `json:"healthy"`
}

// Judge fills each row's Lag and Problems and returns the verdict. now is
// the caller's clock when the answers came; a replica's times are read
// against its own clock (Replica.Time), so clock skew does not count.
//
// A replica has a problem when it is unreachable, when its gateway is down
// or runs another version than the replica's desired commit (drift), or
// when its desired commit has not been the fleet's for more than maxLag.
// A replica pinned locally is judged on drift only: its pin holds for it
// alone.
func Judge(rows []Row, maxLag time.Duration, now time.Time) Verdict {
	v := Verdict{Versions: map[string]int{}, Healthy: true}
	// The fleet's desired commit is the one applied last, anywhere; since
	// is how long ago the first replica applied it.
	var newest time.Time
	for _, r := range rows {
		rep := r.Replica
		if rep == nil || local(rep) || rep.Desired == "" || rep.AppliedAt.IsZero() {
			continue
		}
		at := now.Add(-rep.Time.Sub(rep.AppliedAt))
		if at.After(newest) {
			newest, v.Desired = at, rep.Desired
		}
	}
	since := newest
	for _, r := range rows {
		if rep := r.Replica; rep != nil && rep.Desired == v.Desired && !local(rep) && !rep.AppliedAt.IsZero() {
			if at := now.Add(-rep.Time.Sub(rep.AppliedAt)); at.Before(since) {
				since = at
			}
		}
	}
	for i := range rows {
		r := &rows[i]
		rep := r.Replica
		if rep == nil {
			r.Problems = append(r.Problems, "unreachable")
			v.Healthy = false
			continue
		}
		v.Versions[rep.Gateway.Version]++
		switch {
		case !rep.Gateway.Reachable:
			r.Problems = append(r.Problems, "gateway unreachable")
		case rep.Desired != "" && rep.Gateway.Version != rep.Desired:
			r.Problems = append(r.Problems, fmt.Sprintf("drift: gateway runs %s, desired %s", short(rep.Gateway.Version), short(rep.Desired)))
		}
		if !local(rep) && v.Desired != "" && rep.Desired != v.Desired {
			r.Lag = max(now.Sub(since), 0)
			r.LagSeconds = r.Lag.Seconds()
			if r.Lag > maxLag {
				r.Problems = append(r.Problems, fmt.Sprintf("lags %s behind %s (max %s)", r.Lag.Round(time.Second), short(v.Desired), maxLag))
			}
		}
		if len(r.Problems) > 0 {
			v.Healthy = false
		}
	}
	return v
}

func local(r *Replica) bool { return r.Pin != nil && r.Pin.Scope == ScopeLocal }

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "none"
	}
	return sha
}
