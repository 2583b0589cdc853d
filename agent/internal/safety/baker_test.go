package safety

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// script is a gateway whose status follows a list of traffic reports, the
// last one repeating.
type script struct {
	mu    sync.Mutex
	steps []*client.TrafficReport
	reads int
}

func (s *script) Status(context.Context) (client.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := s.steps[min(s.reads, len(s.steps)-1)]
	s.reads++
	return client.Status{Traffic: tr}, nil
}

// recorder records the actions asked for.
type recorder struct {
	mu        sync.Mutex
	rollbacks []string
	reports   []string
	done      chan struct{}
}

func (r *recorder) AutoRollback(_ context.Context, from, to, reason string) error {
	r.mu.Lock()
	r.rollbacks = append(r.rollbacks, from+"->"+to+": "+reason)
	r.mu.Unlock()
	close(r.done)
	return nil
}

func (r *recorder) ReportRegression(_ context.Context, version, reason string) {
	r.mu.Lock()
	r.reports = append(r.reports, version+": "+reason)
	r.mu.Unlock()
	close(r.done)
}

func bundleOf(version string, cfg schemas.Config) *schemas.Bundle {
	return &schemas.Bundle{Version: version, Config: cfg}
}

func report(since time.Time, cur, prev map[string]client.RouteTraffic) *client.TrafficReport {
	tr := &client.TrafficReport{LatencyBoundsSeconds: bounds, Current: traffic("new", cur), Previous: traffic("old", prev)}
	tr.Current.Since = since
	for _, r := range cur {
		tr.Current.Total.Requests += r.Requests
	}
	return tr
}

// TestBaker runs the Baker against scripted gateway reports until it acts
// (or its window ends) and checks what it did and after how many checks.
func TestBaker(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	shopRoute := schemas.Route{Backends: []schemas.Backend{{Upstream: "stable", Weight: 100}}}
	split := schemas.Route{Backends: []schemas.Backend{{Upstream: "stable", Weight: 50}, {Upstream: "bad", Weight: 50}}}
	safety := func(action string) *schemas.Safety {
		return &schemas.Safety{BakeWindow: schemas.Duration(2 * time.Second), CheckInterval: schemas.Duration(5 * time.Millisecond),
			SafetyRule: schemas.SafetyRule{Action: action}}
	}
	oldCfg := schemas.Config{Routes: map[string]schemas.Route{"shop": shopRoute}, Safety: safety("")}
	newCfg := schemas.Config{Routes: map[string]schemas.Route{"shop": split}, Safety: safety("")}
	reportCfg := schemas.Config{Routes: map[string]schemas.Route{"shop": split}, Safety: safety(schemas.SafetyReport)}
	good := map[string]client.RouteTraffic{"shop": one(counts(2000, 2, 0, 0, 0))}
	bad := func(n uint64) map[string]client.RouteTraffic {
		return map[string]client.RouteTraffic{"shop": route(map[string]client.Counts{
			"stable": counts(n/2, 0, 0, 0, 0), "bad": counts(n/2, n/2, 0, 0, 0)})}
	}
	tests := []struct {
		name       string
		next       schemas.Config
		steps      []*client.TrafficReport
		rollback   bool
		reported   bool
		wantChecks int
		wantResets int
	}{
		{
			name:       "two consecutive breaches roll back",
			next:       newCfg,
			steps:      []*client.TrafficReport{report(t0, bad(400), good)},
			rollback:   true,
			wantChecks: 2,
		},
		{
			name: "a breach, then a good check, then two breaches",
			next: newCfg,
			steps: []*client.TrafficReport{report(t0, bad(400), good), report(t0, map[string]client.RouteTraffic{"shop": one(counts(2000, 2, 0, 0, 0))}, good),
				report(t0, bad(2400), good)},
			rollback:   true,
			wantChecks: 4,
		},
		{
			name: "a gateway restart resets the streak",
			next: newCfg,
			steps: []*client.TrafficReport{report(t0, bad(400), good), report(t0.Add(time.Minute), bad(200), nil),
				report(t0.Add(time.Minute), bad(300), nil)},
			rollback:   true,
			wantChecks: 3,
			wantResets: 1,
		},
		{
			name:       "action report only reports",
			next:       reportCfg,
			steps:      []*client.TrafficReport{report(t0, bad(400), good)},
			reported:   true,
			wantChecks: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{done: make(chan struct{})}
			b, err := NewBaker(Options{Gateway: &script{steps: tt.steps}, Rollbacker: rec})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { b.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			b.Applied(bundleOf("old", oldCfg), bundleOf("new", tt.next))
			select {
			case <-rec.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("no action; status %+v", b.BakeStatus())
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if got := len(rec.rollbacks) == 1; got != tt.rollback {
				t.Errorf("rollbacks %q, want one: %v", rec.rollbacks, tt.rollback)
			}
			if got := len(rec.reports) == 1; got != tt.reported {
				t.Errorf("reports %q, want one: %v", rec.reports, tt.reported)
			}
			st := b.BakeStatus()
			if st.Checks != tt.wantChecks || st.Resets != tt.wantResets {
				t.Errorf("acted after %d checks and %d resets, want %d and %d", st.Checks, st.Resets, tt.wantChecks, tt.wantResets)
			}
		})
	}
}
