package syncer

import (
	"context"
	"errors"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/source"
)

// fleet is one config repository (a work repo pushed to a bare one, served
// as a local path or over smart HTTP with push enabled) and the replicas
// that track it, each a Loop with its own state dir and gateway.
type fleet struct {
	t    *testing.T
	work *configRepo
	bare string
	url  string
}

func newFleet(t *testing.T, overHTTP bool) *fleet {
	t.Helper()
	f := &fleet{t: t, work: newConfigRepo(t)}
	root := t.TempDir()
	f.bare = filepath.Join(root, "config.git")
	git(t, root, "init", "-q", "--bare", "-b", "main", f.bare)
	git(t, f.bare, "config", "http.receivepack", "true")
	f.url = f.bare
	if overHTTP {
		const backend = "/usr/lib/git-core/git-http-backend"
		if _, err := os.Stat(backend); err != nil {
			t.Skip("git-http-backend not installed")
		}
		srv := httptest.NewServer(&cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}})
		t.Cleanup(srv.Close)
		f.url = srv.URL + "/config.git"
	}
	return f
}

// commit commits files in the work repo and pushes main to the remote.
func (f *fleet) commit(msg string, files map[string]string) string {
	f.t.Helper()
	sha := f.work.commit(msg, files)
	git(f.t, f.work.dir, "push", "-q", f.bare, "main")
	return sha
}

// replica starts a Loop on the fleet's repository with an empty state dir.
func (f *fleet) replica(name string, push bool, wrap func(*gitsrc.Source) source.Source) *harness {
	h := newHarness(f.t)
	h.repo, h.url, h.pushMarks, h.wrapSrc, h.replica = f.work, f.url, push, wrap, name
	h.start()
	return h
}

// remoteRef returns what ref points at in the remote (peeled to a
// commit), or "" when it does not exist.
func (f *fleet) remoteRef(ref string) string {
	out, err := execGit(f.bare, "rev-parse", "--verify", "-q", ref+"^{commit}")
	if err != nil {
		return ""
	}
	return out
}

func execGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func appliedEver(h *harness, sha string) bool {
	for _, e := range h.loop.History(0) {
		if e.SHA == sha && (e.Result == bundle.ResultApplied || e.Result == bundle.ResultNoop || e.Result == bundle.ResultRollback) {
			return true
		}
	}
	return false
}

// TestFleetPinInGit: a rollback on one replica pins every replica through
// the repository, including one started afterwards with an empty state
// dir; resume and fix-forward lift it everywhere, fix-forward deleting it
// once; a replica that cannot push keeps a local pin and says so.
func TestFleetPinInGit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		http bool
	}{{"bare repo by path", false}, {"smart HTTP with push", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFleet(t, tc.http)
			c1 := f.commit("c1", validConfig(9001))
			a := f.replica("replica-a", true, nil)
			b := f.replica("replica-b", true, nil)
			a.sync()
			b.sync()
			c2 := f.commit("c2 (bad)", validConfig(9002))
			a.sync()
			b.sync()
			if a.running() != c2 || b.running() != c2 {
				t.Fatalf("before rollback: a runs %s, b runs %s, want %s", a.running(), b.running(), c2)
			}

			// Rollback on A: the pin and the bad mark are in Git, B follows.
			res, err := a.loop.Rollback(ctx, "", false, "c2 broke checkout")
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA != c1 || res.From != c2 || res.Pin.Scope != bundle.PinFleet || a.running() != c1 {
				t.Fatalf("rollback: %+v, a runs %s", res, a.running())
			}
			if f.remoteRef("refs/tags/gitgate/main/pin") != c1 || f.remoteRef("refs/tags/gitgate/main/bad/"+c2) != c2 {
				t.Fatalf("marks in the remote: pin %q bad %q", f.remoteRef("refs/tags/gitgate/main/pin"), f.remoteRef("refs/tags/gitgate/main/bad/"+c2))
			}
			if f.remoteRef("refs/heads/main") != c2 {
				t.Fatal("the branch was rewritten")
			}
			s := b.sync()
			if b.running() != c1 || s.Mode != "pinned" || s.PinScope != bundle.PinFleet || s.Pin.From != c2 || s.Pin.By != "replica-a" || s.Pin.Reason != "c2 broke checkout" {
				t.Fatalf("b did not follow the pin: runs %s, status %+v pin %+v", b.running(), s, s.Pin)
			}

			// A replica started later with an empty state dir starts pinned
			// and never applies the bad commit.
			late := f.replica("replica-late", false, nil)
			s = late.sync()
			if late.running() != c1 || s.Mode != "pinned" || s.PinScope != bundle.PinFleet || appliedEver(late, c2) {
				t.Fatalf("late replica: runs %s, mode %s scope %s, applied c2: %v", late.running(), s.Mode, s.PinScope, appliedEver(late, c2))
			}

			// Resume on B deletes the pin; A sees it gone on its next
			// check and tracks again, still refusing the bad tip.
			if err := b.loop.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if f.remoteRef("refs/tags/gitgate/main/pin") != "" {
				t.Fatal("resume left the pin in the remote")
			}
			for _, h := range []*harness{a, b, late} {
				if s := h.sync(); s.Mode != "tracking" || h.running() != c1 {
					t.Fatalf("after resume: %s mode %s runs %s", h.replica, s.Mode, h.running())
				}
			}

			// Pinned again; a new good commit lifts the pin on every
			// replica, deleted in the repository exactly once.
			if _, err := b.loop.Rollback(ctx, c1[:10], false, "again"); err != nil {
				t.Fatal(err)
			}
			for _, h := range []*harness{a, late} {
				if s := h.sync(); s.PinScope != bundle.PinFleet {
					t.Fatalf("%s not pinned: %+v", h.replica, s)
				}
			}
			c3 := f.commit("c3 fix", validConfig(9003))
			var lifts float64
			for _, h := range []*harness{a, b, late} {
				s := h.sync()
				if h.running() != c3 || s.Mode != "tracking" {
					t.Fatalf("fix-forward: %s runs %s mode %s (%s)", h.replica, h.running(), s.Mode, s.LastError)
				}
				var m dto.Metric
				if err := h.loop.opts.Metrics.PinWrites.WithLabelValues("lift", "ok").Write(&m); err != nil {
					t.Fatal(err)
				}
				lifts += m.GetCounter().GetValue()
			}
			if lifts != 1 || f.remoteRef("refs/tags/gitgate/main/pin") != "" {
				t.Fatalf("fix-forward deleted the pin %v times (pin now %q), want once", lifts, f.remoteRef("refs/tags/gitgate/main/pin"))
			}

			// The replica without push rights pins locally and says so;
			// the fleet is not pinned.
			res, err = late.loop.Rollback(ctx, c1, true, "local only")
			if err != nil {
				t.Fatal(err)
			}
			s = late.sync()
			if res.Pin.Scope != bundle.PinLocal || s.PinScope != bundle.PinLocal || s.PinScopeReason == "" || late.running() != c1 {
				t.Fatalf("read-only rollback: %+v status scope %q (%q)", res.Pin, s.PinScope, s.PinScopeReason)
			}
			if f.remoteRef("refs/tags/gitgate/main/pin") != "" || a.sync().Mode != "tracking" || a.running() != c3 {
				t.Fatal("a local pin reached the fleet")
			}
		})
	}
}

// barrierSource holds WriteMarks until n writers arrived, so that every
// writer read the marks before any of them writes.
type barrierSource struct {
	*gitsrc.Source
	wg *sync.WaitGroup
}

func (b barrierSource) WriteMarks(ctx context.Context, w []source.MarkWrite) error {
	b.wg.Done()
	b.wg.Wait()
	return b.Source.WriteMarks(ctx, w)
}

// TestConcurrentRollbacksOneWins: two replicas roll back at the same time
// to different commits; exactly one pin is written, the other rollback
// fails with ErrPinConflict and changes nothing.
func TestConcurrentRollbacksOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t, false)
	c1 := f.commit("c1", validConfig(9001))
	c2 := f.commit("c2", validConfig(9002))
	f.commit("c3", validConfig(9003))
	var wg sync.WaitGroup
	wg.Add(2)
	wrap := func(s *gitsrc.Source) source.Source { return barrierSource{s, &wg} }
	a := f.replica("a", true, wrap)
	b := f.replica("b", true, wrap)
	a.sync()
	b.sync()
	type out struct {
		h   *harness
		res RollbackResult
		err error
	}
	outs := make(chan out, 2)
	for _, x := range []struct {
		h   *harness
		rev string
	}{{a, c1}, {b, c2}} {
		go func() {
			res, err := x.h.loop.Rollback(ctx, x.rev, true, "race")
			outs <- out{x.h, res, err}
		}()
	}
	var won, lost []out
	for range 2 {
		o := <-outs
		if o.err == nil {
			won = append(won, o)
		} else {
			lost = append(lost, o)
		}
	}
	if len(won) != 1 || len(lost) != 1 || !errors.Is(lost[0].err, ErrPinConflict) {
		t.Fatalf("won %d, lost %d (%v); want one each, the loser with ErrPinConflict", len(won), len(lost), lost)
	}
	if got := f.remoteRef("refs/tags/gitgate/main/pin"); got != won[0].res.SHA {
		t.Fatalf("pin in the remote = %s, want the winner's %s", got, won[0].res.SHA)
	}
	// The loser changed nothing, and follows the winner on its next check.
	if lost[0].h.loop.Status(ctx).Pin != nil {
		t.Fatal("the losing rollback left a pin")
	}
	if s := lost[0].h.sync(); s.Pin == nil || s.Pin.SHA != won[0].res.SHA || lost[0].h.running() != won[0].res.SHA {
		t.Fatalf("loser after sync: %+v runs %s", s.Pin, lost[0].h.running())
	}
}

// TestFleetPinRefusedWhenVerifying: with signature verification on, a
// replica refuses to follow a fleet pin to a commit its trusted keys did
// not sign, and refuses to write one.
func TestFleetPinRefusedWhenVerifying(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t, false)
	c1 := f.commit("c1", validConfig(9001))
	f.commit("c2", validConfig(9002))
	a := f.replica("a", true, nil)
	a.sync()

	v := newHarness(t)
	v.repo, v.url, v.pushMarks, v.replica, v.trustedKeys = f.work, f.url, true, "verifying", testKeyRing(t)
	v.start()
	v.sync()
	// v's own rollback to an unsigned commit writes nothing.
	if _, err := v.loop.Rollback(ctx, c1, false, "unsigned"); !errors.Is(err, source.ErrUnsigned) {
		t.Fatalf("rollback to an unsigned commit: %v, want ErrUnsigned", err)
	}
	if f.remoteRef("refs/tags/gitgate/main/pin") != "" {
		t.Fatal("a pin to an unsigned commit was written")
	}
	// a (not verifying) pins the fleet to it; v does not follow.
	if _, err := a.loop.Rollback(ctx, c1, false, "pin"); err != nil {
		t.Fatal(err)
	}
	s := v.sync()
	if v.running() == c1 || s.LastApplied == c1 || !strings.Contains(s.LastError, "not signed") {
		t.Fatalf("verifying replica followed an unsigned pin: runs %q, last error %q", v.running(), s.LastError)
	}
}
