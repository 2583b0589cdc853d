package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "v-autorollback-fleet",
		criterion: "3 agent+gateway pairs with peers and push tokens on one repository behind git http-backend, each " +
			"under ~70 req/s of /shop from a non-retrying client: c2 sends half of shop to a backend answering 500; " +
			"the fleet rolls back to c1 by itself (one pin tag at c1, c2 marked bad in the repository), all three " +
			"gateways serve c1 again, and every replica's status is pinned fleet-wide",
		run: autoRollbackFleet,
	})
}

func autoRollbackFleet(ctx context.Context, t *T) error {
	srv, err := harness.ServeGit(t.dir)
	if err != nil {
		return Skip(err.Error())
	}
	t.Cleanup(srv.Close)
	repo, err := harness.NewRepo(filepath.Join(t.dir, "config-repo"))
	if err != nil {
		return err
	}
	if _, err := repo.Git("config", "http.receivepack", "true"); err != nil {
		return err
	}
	pushToken := filepath.Join(t.dir, "push-token")
	if err := os.WriteFile(pushToken, []byte("push-only-token\n"), 0o600); err != nil {
		return err
	}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(good.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(broken.Close)
	commit := func(label string, brokenWeight int) (string, error) {
		cfg := trafficConfigYAML(good.URL, broken.URL, label, brokenWeight) + fmt.Sprintf(safetyYAML, "30s")
		return repo.WriteCommit("config.yaml", cfg, label)
	}
	c1, err := commit("c1", 0)
	if err != nil {
		return err
	}

	fleet := make([]*harness.Stack, 3)
	hooks := make([]string, len(fleet))
	for i := range fleet {
		st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: filepath.Join(t.dir, fmt.Sprintf("r%d", i)), RepoURL: srv.URL("config-repo"), PollInterval: "5m"})
		if err != nil {
			return err
		}
		t.Cleanup(st.Close)
		fleet[i], hooks[i] = st, st.HookAddr
	}
	for _, st := range fleet {
		st.AgentExtraArgs = []string{"--peers", strings.Join(hooks, ","), "--push-token-file", pushToken}
	}
	start := time.Now()
	if err := startAll(ctx, fleet); err != nil {
		return err
	}
	if _, err := waitAllServedWithin(ctx, fleet, c1, "c1", start); err != nil {
		return err
	}
	loads := make([]*shopLoad, len(fleet))
	for i, st := range fleet {
		loads[i] = startShopLoad(st, 70)
	}
	defer func() {
		for _, l := range loads {
			l.Stop()
		}
	}()
	time.Sleep(2 * time.Second) // the baseline: c1's shop traffic on every replica

	c2, err := commit("c2", 50)
	if err != nil {
		return err
	}
	applied := time.Now()
	if _, err := fleet[0].Webhook(ctx); err != nil {
		return err
	}
	if _, err := waitAllServedWithin(ctx, fleet, c2, "c2", applied); err != nil {
		return fmt.Errorf("before the verdict: %w", err)
	}
	took, err := waitAllServedWithin(ctx, fleet, c1, "c1", applied)
	if err != nil {
		return fmt.Errorf("after the bad commit: %w", err)
	}
	if pin, _ := repo.Git("rev-parse", "refs/tags/gitgate/main/pin^{commit}"); pin != c1 {
		return fmt.Errorf("pin tag at %q, want c1 %s", pin, short(c1))
	}
	if bad, _ := repo.Git("rev-parse", "refs/tags/gitgate/main/bad/"+c2+"^{commit}"); bad != c2 {
		return fmt.Errorf("no bad mark for c2 in the repository (%q)", bad)
	}
	var autos int
	for _, st := range fleet {
		if err := pinnedFleetWide(ctx, st, ""); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(st.Dir), err)
		}
		h, err := st.History(ctx)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(h, func(e harness.Entry) bool { return e.Trigger == "auto-rollback" }) {
			autos++
		}
		if err := expectServing(st, "c1", 5); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(st.Dir), err)
		}
	}
	if autos == 0 {
		return fmt.Errorf("no replica recorded an auto-rollback entry")
	}
	var sent, failed int64
	for _, l := range loads {
		sent, failed = sent+l.sent.Load(), failed+l.failed.Load()
	}
	t.Logf("detection: c2 applied to every replica serving c1 again: %s (1s checks, 2 breaches); %d replica(s) judged it themselves, the others followed the pin",
		spread(took), autos)
	t.Logf("load: %d requests sent, %d failed", sent, failed)
	return nil
}
