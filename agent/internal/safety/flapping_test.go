package safety

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// acts records each action asked for and signals it.
type acts struct {
	ch chan string // "rollback from->to: reason" or "report version: reason"
}

func (a *acts) AutoRollback(_ context.Context, from, to, reason string) error {
	a.ch <- "rollback " + from + "->" + to + ": " + reason
	return nil
}

func (a *acts) ReportRegression(_ context.Context, version, reason string) {
	a.ch <- "report " + version + ": " + reason
}

// versionGateway reports, for whichever version it is told runs, half of
// route shop failing against a clean previous version "good".
type versionGateway struct {
	mu      sync.Mutex
	running string
}

func (g *versionGateway) set(v string) {
	g.mu.Lock()
	g.running = v
	g.mu.Unlock()
}

func (g *versionGateway) Status(context.Context) (client.Status, error) {
	g.mu.Lock()
	v := g.running
	g.mu.Unlock()
	tr := report(time.Unix(1000, 0), map[string]client.RouteTraffic{"shop": route(map[string]client.Counts{
		"stable": counts(200, 0, 0, 0, 0), "bad": counts(200, 200, 0, 0, 0)})},
		map[string]client.RouteTraffic{"shop": one(counts(2000, 2, 0, 0, 0))})
	tr.Current.Version, tr.Previous.Version = v, "good"
	return client.Status{Version: v, Traffic: tr}, nil
}

// TestFlappingGuard: after an automatic rollback, a second regression
// within the bake window is only reported, with the guard named in the
// reason; one after the window rolls back again.
func TestFlappingGuard(t *testing.T) {
	t.Parallel()
	const window = time.Minute
	cfg := func(route schemas.Route) schemas.Config {
		return schemas.Config{Routes: map[string]schemas.Route{"shop": route},
			Safety: &schemas.Safety{BakeWindow: schemas.Duration(window), CheckInterval: schemas.Duration(5 * time.Millisecond)}}
	}
	good := cfg(schemas.Route{Backends: []schemas.Backend{{Upstream: "stable", Weight: 100}}})
	split := func(w int) schemas.Config {
		return cfg(schemas.Route{Backends: []schemas.Backend{{Upstream: "stable", Weight: 100 - w}, {Upstream: "bad", Weight: w}}})
	}
	tests := []struct {
		name  string
		after time.Duration // from the first rollback to the second regression
		want  string        // prefix of the second action
		guard bool          // the reason names the flapping guard
	}{
		{"within the window: reported only", window / 2, "report second: ", true},
		{"after the window: rolled back again", window + time.Second, "rollback second->good: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var now atomic.Int64
			t0 := time.Unix(5000, 0)
			now.Store(t0.UnixNano())
			gw := &versionGateway{}
			rec := &acts{ch: make(chan string, 10)}
			b, err := NewBaker(Options{Gateway: gw, Rollbacker: rec, Now: func() time.Time { return time.Unix(0, now.Load()) }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { b.Run(ctx) })
			defer func() { cancel(); wg.Wait() }()
			next := func() string {
				t.Helper()
				select {
				case a := <-rec.ch:
					return a
				case <-time.After(10 * time.Second):
					t.Fatalf("no action; status %+v", b.BakeStatus())
					return ""
				}
			}

			gw.set("first")
			b.Applied(bundleOf("good", good), bundleOf("first", split(50)))
			if a := next(); !strings.HasPrefix(a, "rollback first->good: 5xx") {
				t.Fatalf("first regression: %q, want a rollback to good", a)
			}
			// The fix lands, and regresses too (the same lineage).
			now.Store(t0.Add(tt.after).UnixNano())
			gw.set("second")
			b.Applied(bundleOf("good", good), bundleOf("second", split(40)))
			a := next()
			if !strings.HasPrefix(a, tt.want) || strings.Contains(a, "flapping guard") != tt.guard {
				t.Fatalf("second regression: %q, want %q (flapping guard named: %v)", a, tt.want, tt.guard)
			}
			wantResult := "rolled back"
			if tt.guard {
				wantResult = "reported"
			}
			waitDone(t, b)
			if s := b.BakeStatus(); s.Version != "second" || s.Result != wantResult {
				t.Fatalf("bake %+v: want second's, %s", s, wantResult)
			}
		})
	}
}

// waitDone waits until b's current bake ended.
func waitDone(t *testing.T, b *Baker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s := b.BakeStatus(); s == nil || !s.Done; s = b.BakeStatus() {
		if time.Now().After(deadline) {
			t.Fatalf("bake not done: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
}
