package syncer

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// heard records the events a loop sends.
type heard struct {
	mu     sync.Mutex
	events []Event
}

func (h *heard) Notify(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

// take returns the events heard since the last take.
func (h *heard) take() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.events
	h.events = nil
	return out
}

// TestNotifierHearsEachEvent walks one loop through every event a
// notification can be about and checks what the Notifier was told, in order.
func TestNotifierHearsEachEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := &heard{}
	h.notifier, h.replica = rec, "replica-1"
	a := h.repo.commit("A", validConfig(9001))
	h.start()
	ctx := context.Background()
	var b, c, bad string
	other, err := schemas.NewBundle(strings.Repeat("b", 40), schemas.Source{}, schemas.Config{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind          EventKind
		version, from func() string
		trigger       string
	}
	none := func() string { return "" }
	is := func(p *string) func() string { return func() string { return *p } }
	steps := []struct {
		name string
		do   func()
		want []want
	}{
		{"first commit applied", func() { h.sync() }, []want{{EventApplied, is(&a), none, ""}}}, // by the start pass or ours
		{"invalid commit rejected", func() { bad = h.repo.commit("bad", invalidConfig()); h.sync() }, []want{{EventRejected, is(&bad), none, "test"}}},
		{"fix applied", func() { b = h.repo.commit("B", validConfig(9002)); h.sync() }, []want{{EventApplied, is(&b), none, "test"}}},
		{"same digest is no news", func() { h.repo.commit("docs", map[string]string{"README.md": "x"}); h.sync() }, nil},
		{"manual rollback", func() {
			if _, err := h.loop.Rollback(ctx, "", false, "B broke checkout"); err != nil {
				t.Fatal(err)
			}
		}, []want{{EventRollback, is(&a), is(&b), "rollback"}}},
		{"fix-forward lifts the pin", func() { c = h.repo.commit("C", validConfig(9003)); h.sync() },
			[]want{{EventPinLifted, is(&c), is(&a), "fix-forward"}, {EventApplied, is(&c), none, "test"}}},
		{"automatic rollback", func() {
			if err := h.loop.AutoRollback(ctx, c, b, "5xx rate 40%"); err != nil {
				t.Fatal(err)
			}
		}, []want{{EventAutoRollback, is(&b), is(&c), "auto-rollback"}}},
		{"resume lifts the pin", func() {
			if err := h.loop.Resume(ctx); err != nil {
				t.Fatal(err)
			}
		}, []want{{EventPinLifted, none, is(&b), "resume"}}},
		{"drift healed", func() { h.sync(); h.gw.Set(other); h.sync() }, []want{{EventDriftHealed, is(&b), none, "heal"}}},
		{"gateway down: sync failed", func() { h.gw.Stop(); h.sync() }, []want{{EventSyncFailed, none, none, "test"}}},
	}
	for _, st := range steps {
		st.do()
		got := rec.take()
		if len(got) != len(st.want) {
			t.Fatalf("%s: heard %+v, want %d events", st.name, got, len(st.want))
		}
		for i, w := range st.want {
			g := got[i]
			if g.Kind != w.kind || g.Version != w.version() || (w.trigger != "" && g.Trigger != w.trigger) || (w.from() != "" && g.From != w.from()) {
				t.Fatalf("%s: event %d is %+v, want %s version %s from %s trigger %s", st.name, i, g, w.kind, w.version(), w.from(), w.trigger)
			}
			if g.Kind == EventRejected && len(g.Diagnostics) == 0 {
				t.Fatalf("%s: rejection without diagnostics: %+v", st.name, g)
			}
			if g.Kind == EventDriftHealed && !strings.HasPrefix(g.From, other.Version[:12]) {
				t.Fatalf("%s: heal does not say the gateway ran %s: %+v", st.name, other.Version, g)
			}
			if g.Replica != "replica-1" || g.Branch != "main" || g.Repo == "" || g.Time.IsZero() {
				t.Fatalf("%s: event %d not stamped with the loop's repo, branch, replica and time: %+v", st.name, i, g)
			}
		}
	}
	// The backoff retry recovers by itself and says since when it failed.
	h.gw.Start()
	waitFor(t, func() bool {
		for _, e := range rec.take() {
			if e.Kind == EventSyncRecovered {
				if e.FailingSince.IsZero() {
					t.Errorf("recovery without the streak's start: %+v", e)
				}
				return true
			}
		}
		return false
	})
}
