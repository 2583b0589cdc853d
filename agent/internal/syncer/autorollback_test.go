package syncer

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/safety"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// failure is one CommitFailed call.
type failure struct {
	sha, cause string
}

// causeReporter records the failures reported with their causes.
type causeReporter struct {
	mu     sync.Mutex
	failed []failure
	seen   chan struct{}
}

func newCauseReporter() *causeReporter { return &causeReporter{seen: make(chan struct{}, 100)} }

func (r *causeReporter) CommitApplied(context.Context, string, string) {}

func (r *causeReporter) CommitFailed(_ context.Context, sha string, _ []schemas.Diagnostic, err error) {
	r.mu.Lock()
	r.failed = append(r.failed, failure{sha, err.Error()})
	r.mu.Unlock()
	r.seen <- struct{}{}
}

// wait returns the first failure reported, waiting for it.
func (r *causeReporter) wait(t *testing.T) failure {
	t.Helper()
	select {
	case <-r.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no failure reported")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed[0]
}

// startReporting runs a Loop on h's repo and gateway as h.start does, with
// rep as its reporter and baker (when not nil) told about applies.
func (h *harness) startReporting(rep Reporter, baker Baker) {
	t := h.t
	src, err := gitsrc.Open(gitsrc.Options{URL: h.repo.dir, Branch: "main", StorageDir: filepath.Join(h.state, "git"), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st, err := bundle.Open(h.state, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := client.New(h.gw.Sock)
	l, err := New(Options{Source: src, Store: st, Gateway: gw, Path: "cfg", PollInterval: time.Hour,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Reporter: rep, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if baker != nil {
		l.SetBaker(baker)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	h.loop, h.store = l, st
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
		gw.Close()
		st.Close()
	})
}

// TestAutoRollback: the loop's Rollbacker side. A regression of the
// applied commit rolls back to the one before, marks it bad, pins, records
// an auto-rollback entry quoting the reason, reports the failure with the
// reason and counts it; a regression of a commit that is no longer applied
// changes nothing; a reported regression records it without rolling back.
func TestAutoRollback(t *testing.T) {
	t.Parallel()
	const reason = "5xx 31.0% over 1,240 requests on route shop, baseline 0.2%"
	tests := []struct {
		name string
		// act gets the commits A and B (B applied, A before it).
		act          func(ctx context.Context, l *Loop, a, b string) error
		wantErr      error
		wantRunning  func(a, b string) string
		wantTrigger  string // newest history entry's trigger
		wantPinned   bool
		wantBad      bool
		wantCount    float64
		wantReported string // a substring of the cause reported for B; "" none
	}{
		{
			name:         "the applied commit rolls back",
			act:          func(ctx context.Context, l *Loop, a, b string) error { return l.AutoRollback(ctx, b, a, reason) },
			wantRunning:  func(a, _ string) string { return a },
			wantTrigger:  "auto-rollback",
			wantPinned:   true,
			wantBad:      true,
			wantCount:    1,
			wantReported: "rolled back automatically: " + reason,
		},
		{
			name:        "a commit no longer applied is superseded",
			act:         func(ctx context.Context, l *Loop, a, b string) error { return l.AutoRollback(ctx, a, a, reason) },
			wantErr:     ErrSuperseded,
			wantRunning: func(_, b string) string { return b },
			wantTrigger: "test",
		},
		{
			name: "a reported regression does not roll back",
			act: func(ctx context.Context, l *Loop, _, b string) error {
				l.ReportRegression(ctx, b, reason)
				return nil
			},
			wantRunning:  func(_, b string) string { return b },
			wantTrigger:  "regression",
			wantReported: "regression: " + reason,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			a := h.repo.commit("A", validConfig(9001))
			rep := newCauseReporter()
			h.startReporting(rep, nil)
			h.sync()
			b := h.repo.commit("B", validConfig(9002))
			if s := h.sync(); s.LastApplied != b {
				t.Fatalf("B not applied: %+v", s)
			}
			err := tt.act(context.Background(), h.loop, a, b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got, want := h.running(), tt.wantRunning(a, b); got != want {
				t.Errorf("gateway runs %s, want %s", got, want)
			}
			e := h.loop.History(1)[0]
			if e.Trigger != tt.wantTrigger {
				t.Errorf("newest history entry %+v, want trigger %q", e, tt.wantTrigger)
			}
			if tt.wantTrigger == "auto-rollback" && (e.SHA != a || e.Result != bundle.ResultRollback || e.Error != "auto-rollback: "+reason) {
				t.Errorf("auto-rollback entry %+v: want a rollback to A whose error quotes %q", e, reason)
			}
			if tt.wantTrigger == "regression" && (e.SHA != b || e.Error != reason) {
				t.Errorf("regression entry %+v: want B with the reason", e)
			}
			st := h.loop.Status(context.Background())
			if pinned := st.Pin != nil; pinned != tt.wantPinned {
				t.Errorf("pin %+v, want pinned: %v", st.Pin, tt.wantPinned)
			}
			if tt.wantPinned && (st.Pin.SHA != a || st.Pin.From != b || st.Pin.Hold || !strings.Contains(st.Pin.Reason, reason)) {
				t.Errorf("pin %+v: want A from B, lifting with the next good commit, with the reason", st.Pin)
			}
			if bad := slices.Contains(st.Bad, b); bad != tt.wantBad {
				t.Errorf("bad %v, want B marked bad: %v", st.Bad, tt.wantBad)
			}
			if got := counterValue(t, h.loop.opts.Metrics.AutoRollbacks); got != tt.wantCount {
				t.Errorf("gitgate_agent_auto_rollbacks_total %v, want %v", got, tt.wantCount)
			}
			if tt.wantReported != "" {
				if f := rep.wait(t); f.sha != b || f.cause != tt.wantReported {
					t.Errorf("reported %+v, want B failed with %q", f, tt.wantReported)
				}
			}
		})
	}
}

// counterValue reads counter c.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// bakeLog passes applies to a Baker and records them, so a test sees at
// once (not when the Baker's goroutine gets to it) what the loop asked to
// bake.
type bakeLog struct {
	Baker
	mu      sync.Mutex
	applied []string // "prev->next"
}

func (b *bakeLog) Applied(prev, next *schemas.Bundle) {
	p := "none"
	if prev != nil {
		p = prev.Version
	}
	b.mu.Lock()
	b.applied = append(b.applied, p+"->"+next.Version)
	b.mu.Unlock()
	b.Baker.Applied(prev, next)
}

func (b *bakeLog) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.applied)
}

// breakingGateway is the real admin client whose status adds, while the
// gateway runs version bad, a traffic report in which half of route site
// failed, against none for version good before it.
type breakingGateway struct {
	*client.Client
	good, bad string
}

func (g breakingGateway) Status(ctx context.Context) (client.Status, error) {
	s, err := g.Client.Status(ctx)
	if err != nil || s.Version != g.bad {
		return s, err
	}
	lat := func(n uint64) []uint64 { return []uint64{0, 0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} }
	cur := client.Counts{Requests: 400, Responses: client.ResponseClasses{Class2xx: 200, Class5xx: 200}, Latency: lat(400)}
	prev := client.Counts{Requests: 1000, Responses: client.ResponseClasses{Class2xx: 1000}, Latency: lat(1000)}
	s.Traffic = &client.TrafficReport{
		LatencyBoundsSeconds: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		Current: &client.Traffic{Version: g.bad, Since: time.Unix(1000, 0), Total: cur,
			Routes: map[string]client.RouteTraffic{"site": {Counts: cur, Backends: map[string]client.Counts{"web": cur}}}},
		Previous: &client.Traffic{Version: g.good, Since: time.Unix(900, 0), Until: time.Unix(1000, 0), Total: prev,
			Routes: map[string]client.RouteTraffic{"site": {Counts: prev, Backends: map[string]client.Counts{"web": prev}}}},
	}
	return s, nil
}

// safeConfig is validConfig with a short bake.
func safeConfig(port int) map[string]string {
	f := validConfig(port)
	f["cfg/gw.yaml"] += "safety:\n  bakeWindow: 1m\n  checkInterval: 10ms\n  breaches: 2\n  minRequests: 100\n"
	return f
}

// TestBakerRollsBackThroughLoopOnce runs the real Baker beside the real
// loop: B's bake sees half of site failing and rolls back to A through the
// loop, and the apply of that rollback (and the syncs after it, while the
// pin holds) is never handed to the Baker; the next good commit is.
func TestBakerRollsBackThroughLoopOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.repo.commit("A", safeConfig(9001))
	b := h.repo.commit("B", safeConfig(9002)) // not yet synced: made first to know its SHA
	git(t, h.repo.dir, "reset", "-q", "--hard", a)

	gw := client.New(h.gw.Sock)
	t.Cleanup(func() { gw.Close() })
	log := &bakeLog{}
	h.startReporting(nil, log)
	baker, err := safety.NewBaker(safety.Options{Gateway: breakingGateway{Client: gw, good: a, bad: b}, Rollbacker: h.loop, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	log.Baker = baker
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { baker.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	h.sync()
	git(t, h.repo.dir, "reset", "-q", "--hard", b)
	h.sync()
	// The metric counts the rollback once AutoRollback is done with it.
	waitFor(t, func() bool { return counterValue(t, h.loop.opts.Metrics.AutoRollbacks) == 1 })
	if h.running() != a {
		t.Fatalf("gateway runs %s after the automatic rollback, want A", h.running())
	}
	h.sync()
	h.sync()
	want := []string{"none->" + a, a + "->" + b}
	if got := log.calls(); !slices.Equal(got, want) {
		t.Fatalf("the loop asked to bake %q, want %q: a rollback's apply is never baked", got, want)
	}
	waitFor(t, func() bool { s := baker.BakeStatus(); return s != nil && s.Done })
	if s := baker.BakeStatus(); s.Version != b || s.Result != "rolled back" {
		t.Fatalf("bake %+v: want B's, rolled back", s)
	}
	c := h.repo.commit("C", safeConfig(9003))
	h.sync()
	want = append(want, a+"->"+c)
	if got := log.calls(); !slices.Equal(got, want) || h.running() != c {
		t.Fatalf("after the fix C: baked %q (want %q), running %s", got, want, h.running())
	}
}
