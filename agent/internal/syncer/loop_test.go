package syncer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

func TestApplyRejectNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	good := h.repo.commit("first", validConfig(9001))
	h.start()

	steps := []struct {
		name        string
		commit      func() string
		wantResult  bundle.Result
		wantRunning func(sha string) string
		wantDiag    bool
	}{
		{"valid commit applied", func() string { return good }, bundle.ResultApplied, func(sha string) string { return sha }, false},
		{"invalid commit rejected, old config kept", func() string { return h.repo.commit("break it", invalidConfig()) },
			bundle.ResultRejected, func(string) string { return good }, true},
		{"fix applied", func() string { return h.repo.commit("fix", validConfig(9002)) }, bundle.ResultApplied, func(sha string) string { return sha }, false},
		{"same digest is a no-op", func() string { return h.repo.commit("docs", map[string]string{"README.md": "hi"}) },
			bundle.ResultNoop, nil, false},
		{"force-push to an older commit applies it", func() string {
			git(t, h.repo.dir, "reset", "-q", "--hard", good)
			return good
		}, bundle.ResultApplied, func(sha string) string { return sha }, false},
		{"symlink in the config path rejected", func() string {
			if err := os.Symlink("/etc/passwd", filepath.Join(h.repo.dir, "cfg", "evil.yaml")); err != nil {
				t.Fatal(err)
			}
			git(t, h.repo.dir, "add", "cfg/evil.yaml")
			return h.repo.commit("symlink", nil)
		}, bundle.ResultRejected, func(string) string { return good }, true},
	}
	prevRunning := ""
	for _, st := range steps {
		sha := st.commit()
		s := h.sync()
		last := h.loop.History(1)[0]
		if last.SHA != sha || last.Result != st.wantResult {
			t.Fatalf("%s: last entry %s %s (%s), want %s %s", st.name, last.SHA, last.Result, last.Error, sha, st.wantResult)
		}
		want := prevRunning
		if st.wantRunning != nil {
			want = st.wantRunning(sha)
		}
		if h.running() != want {
			t.Fatalf("%s: gateway runs %s, want %s", st.name, h.running(), want)
		}
		prevRunning = h.running()
		if s.LastAttempted != sha {
			t.Fatalf("%s: last attempted %s, want %s", st.name, s.LastAttempted, sha)
		}
		if st.wantDiag {
			if len(last.Diagnostics) == 0 || !strings.HasPrefix(last.Diagnostics[0].File, "cfg/") {
				t.Fatalf("%s: diagnostics %+v, want files under cfg/", st.name, last.Diagnostics)
			}
			if s.LastApplied == sha {
				t.Fatalf("%s: rejected commit recorded as applied", st.name)
			}
		}
	}
	// The reporter heard about the applied and the refused commits.
	if got := <-h.rep.applied; got != good {
		t.Fatalf("first applied report for %s, want %s", got, good)
	}
	if got := <-h.rep.failed; got == good || got == "" {
		t.Fatalf("failure report for %q", got)
	}
}

func TestCoalescesTriggers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.repo.commit("first", validConfig(9001))
	release := h.gw.Gate()
	h.start()
	// The first sync is now blocked in the gateway's status call.
	waitFor(t, func() bool { h.loop.mu.Lock(); defer h.loop.mu.Unlock(); return h.loop.started == 1 })
	for range 50 {
		h.loop.Trigger("webhook")
	}
	release()
	waitFor(t, func() bool { h.loop.mu.Lock(); defer h.loop.mu.Unlock(); return h.loop.completed == 2 })
	h.loop.mu.Lock()
	started, completed := h.loop.started, h.loop.completed
	h.loop.mu.Unlock()
	if started != 2 || completed != 2 || len(h.loop.mailbox) != 0 {
		t.Fatalf("after 50 triggers during a sync: started %d completed %d pending %d; want exactly one more sync", started, completed, len(h.loop.mailbox))
	}
}

// waitFor polls cond until it holds (no timing assertion: a stuck test
// fails on the deadline).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSelfHeal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	desired := h.gw.Current()
	other, err := schemas.NewBundle(strings.Repeat("b", 40), schemas.Source{}, schemas.Config{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		break_ func()
		// wantWas is what the heal entry says the gateway ran before.
		wantWas bundle.GatewayRun
	}{
		{"hand-edited gateway", func() { h.gw.Set(other) }, bundle.GatewayRun{Version: other.Version, Digest: other.Digest}},
		{"gateway restarted empty", func() { h.gw.Restart(nil) }, bundle.GatewayRun{}},
		{"gateway restarted from an older file", func() { h.gw.Restart(other) }, bundle.GatewayRun{Version: other.Version, Digest: other.Digest}},
	}
	for _, tc := range tests {
		tc.break_()
		h.sync()
		if got := h.gw.Current(); got == nil || got.Digest != desired.Digest || got.Version != sha {
			t.Fatalf("%s: gateway runs %+v, want %s healed", tc.name, got, sha)
		}
		e := h.loop.History(1)[0]
		if e.Trigger != "heal" || e.Result != bundle.ResultApplied {
			t.Fatalf("%s: last entry %+v, want a heal", tc.name, e)
		}
		if e.Replaced == nil || *e.Replaced != tc.wantWas {
			t.Fatalf("%s: heal entry says the gateway ran %+v, want %+v", tc.name, e.Replaced, tc.wantWas)
		}
	}
}

func TestGatewayDownBacksOffThenRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.gw.Stop()
	h.start()
	s := h.sync()
	if s.GatewayReachable || s.LastResult != bundle.ResultFailed || s.Failures == 0 || s.GatewayError == "" {
		t.Fatalf("with the gateway down: %+v", s)
	}
	fails := len(h.loop.History(0))
	h.gw.Start()
	waitFor(t, func() bool { return h.running() == sha }) // the backoff retry recovers by itself
	s = h.sync()
	if !s.GatewayReachable || s.LastApplied != sha || s.Failures != 0 {
		t.Fatalf("after recovery: %+v", s)
	}
	if fails != 1 {
		t.Fatalf("%d history entries while down, want one failed entry per commit", fails)
	}
}

func TestGitUnreachableRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	moved := h.repo.dir + ".away"
	if err := os.Rename(h.repo.dir, moved); err != nil {
		t.Fatal(err)
	}
	s := h.sync()
	if s.SourceError == "" || s.Failures == 0 || h.running() != sha {
		t.Fatalf("with Git unreachable: %+v; running %s", s, h.running())
	}
	home := h.repo.dir
	h.repo.dir = moved
	sha2 := h.repo.commit("second", validConfig(9002))
	h.repo.dir = home
	if err := os.Rename(moved, h.repo.dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.running() == sha2 })
}

func TestRollbackPinAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.repo.commit("A", validConfig(9001))
	h.start()
	h.sync()
	b := h.repo.commit("B", validConfig(9002))
	h.sync()
	ctx := context.Background()

	// rollback with no sha returns to A, pins, marks B bad.
	res, err := h.loop.Rollback(ctx, "", false, "B broke checkout")
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA != a || res.From != b || h.running() != a {
		t.Fatalf("rollback: %+v running %s", res, h.running())
	}
	s := h.sync()
	if s.Mode != "pinned" || s.Pin.Reason != "B broke checkout" || h.running() != a {
		t.Fatalf("pin did not hold while the branch stays on B: %+v", s)
	}
	// A force-push back to the bad commit never applies it by itself.
	c := h.repo.commit("C", validConfig(9003))
	git(t, h.repo.dir, "reset", "-q", "--hard", b)
	s = h.sync()
	if h.running() != a || s.Mode != "pinned" {
		t.Fatalf("bad commit re-applied: running %s mode %s", h.running(), s.Mode)
	}
	// Fix forward: a new good commit lifts the pin.
	git(t, h.repo.dir, "reset", "-q", "--hard", c)
	s = h.sync()
	if h.running() != c || s.Mode != "tracking" {
		t.Fatalf("fix-forward: running %s mode %s (%s)", h.running(), s.Mode, s.LastError)
	}
	// --hold keeps the pin through new commits until resume.
	if _, err := h.loop.Rollback(ctx, a[:8], true, "hold"); err != nil {
		t.Fatal(err)
	}
	d := h.repo.commit("D", validConfig(9004))
	s = h.sync()
	if h.running() != a || s.Mode != "pinned" || h.loop.History(1)[0].Result != bundle.ResultSkipped {
		t.Fatalf("hold: running %s mode %s", h.running(), s.Mode)
	}
	if err := h.loop.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	s = h.sync()
	if h.running() != d || s.Mode != "tracking" {
		t.Fatalf("resume: running %s mode %s", h.running(), s.Mode)
	}
	if err := h.loop.Resume(ctx); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("second resume: %v, want ErrNotPinned", err)
	}
	// Pin state survives a restart.
	if _, err := h.loop.Rollback(ctx, c, true, "persist"); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.start()
	if s := h.sync(); s.Mode != "pinned" || s.Pin.SHA != c || h.running() != c {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestRollbackErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.repo.commit("A", validConfig(9001))
	h.start()
	h.sync()
	bad := h.repo.commit("bad", invalidConfig())
	h.sync()
	ctx := context.Background()
	tests := []struct {
		name    string
		rev     string
		wantErr error
	}{
		{"unknown prefix", "00000000", source.ErrUnknownRevision},
		{"no previous", "", ErrNoPrevious},
		{"invalid commit", bad[:10], nil},
	}
	for _, tc := range tests {
		_, err := h.loop.Rollback(ctx, tc.rev, false, "")
		if err == nil {
			t.Fatalf("%s: rollback succeeded", tc.name)
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.wantErr)
		}
		var inv *schemas.InvalidError
		if tc.wantErr == nil && !errors.As(err, &inv) {
			t.Fatalf("%s: %v, want *schemas.InvalidError", tc.name, err)
		}
		if s := h.loop.Status(ctx); s.Mode != "tracking" {
			t.Fatalf("%s: a failed rollback pinned the agent", tc.name)
		}
	}
}

// TestRestartBetweenStoreAndPush: the store has the bundle and the history
// says nothing was applied (kill -9 after SaveBundle); a new agent
// converges.
func TestRestartBetweenStoreAndPush(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.gw.Stop()
	h.start()
	h.sync() // builds and stores the bundle, push fails
	h.stop()
	h.gw.Start()
	h.start()
	h.sync()
	if h.running() != sha {
		t.Fatalf("gateway runs %q after restart, want %s", h.running(), sha)
	}
}

func TestRunStopsItsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newHarness(t)
	h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	h.stop()
	h.gw.Stop()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestUnsignedCommitRejectedWhenVerifying(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.trustedKeys = testKeyRing(t)
	sha := h.repo.commit("unsigned", validConfig(9001))
	h.start()
	s := h.sync()
	last := h.loop.History(1)[0]
	if last.SHA != sha || last.Result != bundle.ResultRejected || !strings.Contains(last.Error, "not signed") || h.running() != "" || s.LastApplied != "" {
		t.Fatalf("unsigned commit: %+v, running %q", last, h.running())
	}
}

// TestRestartBetweenApplyAndRecord: the gateway applied the head but the
// agent died before recording it. The restarted agent sees the same digest
// (a no-op) and must record the head as applied, so that a later restart
// does not heal the gateway back to the older commit.
func TestRestartBetweenApplyAndRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	h.stop()
	before := t.TempDir()
	if err := os.CopyFS(before, os.DirFS(h.state)); err != nil {
		t.Fatal(err)
	}
	head := h.repo.commit("second", validConfig(9002))
	h.start()
	h.sync()
	h.stop()
	if h.running() != head {
		t.Fatalf("gateway runs %q, want the head %s", h.running(), head)
	}
	// Forget the record of the head, as a kill -9 after the push would.
	if err := os.RemoveAll(h.state); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(h.state, os.DirFS(before)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		h.start()
		h.sync()
		h.stop()
		if h.running() != head {
			t.Fatalf("restart %d: gateway runs %q, want the head %s", i+1, h.running(), head)
		}
	}
}

// TestGatewayWarningShowsInStatus checks that a warning the gateway gives
// with a successful apply (its last-known-good copy could not be saved)
// reaches the agent's status, and that the gateway's own status keeps it or
// clears it.
func TestGatewayWarningShowsInStatus(t *testing.T) {
	t.Parallel()
	const diskFull = "applied, but not saved as last-known-good: no space left on device"
	tests := []struct {
		name string
		// warning is added to the gateway's answer to the push.
		warning string
		// lkg is what the gateway's status says after the push (nil: an
		// older gateway that says nothing).
		lkg         *client.LastKnownGood
		wantWarning string
	}{
		{name: "no warning", wantWarning: ""},
		{name: "push warns, status silent", warning: diskFull, wantWarning: diskFull},
		{name: "status reports the failed save", warning: diskFull,
			lkg:         &client.LastKnownGood{SavedVersion: "0123abc", Error: "no space left on device"},
			wantWarning: "last-known-good is 0123abc: no space left on device"},
		{name: "status reports the save succeeded since", warning: diskFull,
			lkg: &client.LastKnownGood{SavedVersion: "current"}, wantWarning: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			wg := &warningGateway{}
			h.wrap = func(g Gateway) Gateway { wg.Gateway = g; return wg }
			sha := h.repo.commit("first", validConfig(9001))
			wg.set(tt.warning, nil)
			h.start()
			s := h.sync()
			if s.LastApplied != sha {
				t.Fatalf("not applied: %+v", s)
			}
			if tt.warning != "" && s.GatewayWarning != tt.warning {
				t.Fatalf("after the push: warning %q, want %q", s.GatewayWarning, tt.warning)
			}
			// Later passes read the gateway's status.
			wg.set("", tt.lkg)
			s = h.sync()
			if !strings.Contains(s.GatewayWarning, tt.wantWarning) || (tt.wantWarning == "") != (s.GatewayWarning == "") {
				t.Fatalf("after a status read: warning %q, want %q", s.GatewayWarning, tt.wantWarning)
			}
		})
	}
}

// TestHealBetweenPasses: a gateway that restarts with no config (no
// last-known-good) is healed by the heal check alone, long before the next
// poll (an hour away here), and status reports the gateway down meanwhile.
func TestHealBetweenPasses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.healInterval = 20 * time.Millisecond
	sha := h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	h.gw.Stop()
	waitFor(t, func() bool { return !h.loop.Status(context.Background()).GatewayReachable })
	h.gw.Restart(nil)
	waitFor(t, func() bool { return h.running() == sha })
	waitFor(t, func() bool { return h.loop.Status(context.Background()).GatewayReachable })
}

// TestFirstPassSaysStart checks the trigger recorded for the pass the loop
// makes when it starts: "start", not "poll".
func TestFirstPassSaysStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.start()
	waitFor(t, func() bool { return len(h.loop.History(0)) > 0 })
	hist := h.loop.History(0)
	if e := hist[len(hist)-1]; e.SHA != sha || e.Trigger != "start" || e.Result != bundle.ResultApplied {
		t.Fatalf("first entry %s %s trigger %q, want %s applied trigger \"start\"", e.SHA, e.Result, e.Trigger, sha)
	}
	second := h.repo.commit("second", validConfig(9002))
	h.sync()
	if e := h.loop.History(1)[0]; e.SHA != second || e.Trigger != "test" {
		t.Fatalf("next entry %s trigger %q, want %s trigger \"test\"", e.SHA, e.Trigger, second)
	}
}

// TestGatewayVersionMetricTellsTheTruth edits the gateway by hand: at the
// next status call, gitgate_agent_gateway_version_info names the version
// the gateway runs, not the one the agent applied.
func TestGatewayVersionMetricTellsTheTruth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sha := h.repo.commit("first", validConfig(9001))
	h.start()
	h.sync()
	other, err := schemas.NewBundle(strings.Repeat("b", 40), schemas.Source{}, schemas.Config{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := h.loop.opts.Metrics
	steps := []struct {
		name string
		act  func()
		want string // the one version with value 1; "" for none
	}{
		{name: "after the apply", act: func() {}, want: sha},
		{name: "gateway edited by hand", act: func() { h.gw.Set(other) }, want: other.Version},
		{name: "gateway down", act: func() { h.gw.Stop() }, want: ""},
	}
	for _, st := range steps {
		// Under syncMu, so no sync pass or heal puts the gateway back
		// between the edit and the status call.
		h.loop.syncMu.Lock()
		st.act()
		_, _ = h.loop.gatewayStatus(context.Background())
		h.loop.syncMu.Unlock()
		if got := gaugeLabels(t, m.GatewayVersion); strings.Join(got, ",") != st.want {
			t.Fatalf("%s: versions at 1 %q, want only %q", st.name, got, st.want)
		}
	}
}

// gaugeLabels returns the single label's values of g's series at 1.
func gaugeLabels(t *testing.T, g *prometheus.GaugeVec) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				out = append(out, m.GetLabel()[0].GetValue())
			}
		}
	}
	return out
}
