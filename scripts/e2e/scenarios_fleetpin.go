package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "t-fleet-pin-in-git",
		criterion: "3 agent+gateway pairs (poll 1s, each with a push token) track one repository served by `git http-backend` " +
			"with push enabled; `agent rollback` on one pins the fleet in Git (tags gitgate/main/pin and bad/<sha>, the " +
			"branch untouched) and every gateway serves the rolled-back config; a 4th pair started afterwards with an " +
			"empty state dir and no push token starts pinned (pinScope fleet) and never applies the bad commit; a new " +
			"good commit (fix forward) lifts the pin, deleted from the repository once, and every gateway serves it",
		run: fleetPinInGit,
	})
}

// fleetReplica starts one agent+gateway pair in dir/<name> tracking url,
// the agent with extra flags.
func fleetReplica(ctx context.Context, t *T, name, url string, extra ...string) (*harness.Stack, error) {
	dir := filepath.Join(t.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: dir, RepoURL: url, PollInterval: "1s"})
	if err != nil {
		return nil, err
	}
	t.Cleanup(st.Close)
	if err := st.StartGateway(ctx); err != nil {
		return nil, err
	}
	p, err := harness.Start(dir, "agent", append(append([]string{t.bins.Agent}, st.AgentArgs()...), extra...)...)
	if err != nil {
		return nil, err
	}
	st.Agent = p
	return st, harness.WaitFor(ctx, 15*time.Second, name+"'s control socket to answer", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("agent exited: %v (see %s)", p.Err(), p.Log)
		}
		_, err := st.AgentStatus(ctx)
		return err == nil, nil
	})
}

// waitAllServed waits until every stack serves sha (labelled label) and
// returns, per stack, how long after since it was first seen serving it.
func waitAllServed(ctx context.Context, t *T, stacks []*harness.Stack, sha, label string, since time.Time) ([]time.Duration, error) {
	took := make([]time.Duration, len(stacks))
	errs := make([]error, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.waitServed(ctx, st, sha, label)
			took[i] = time.Since(since)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
	}
	return took, nil
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func fleetPinInGit(ctx context.Context, t *T) error {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return Skip("git is not installed")
	}
	repo, err := harness.NewRepo(filepath.Join(t.dir, "config-repo"))
	if err != nil {
		return err
	}
	// Agents with a push token may push the pin tags.
	if _, err := repo.Git("config", "http.receivepack", "true"); err != nil {
		return err
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	host := &gitHost{addr: addr, h: &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + t.dir, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"},
	}}
	if err := host.up(); err != nil {
		return err
	}
	t.Cleanup(host.down)
	url := "http://" + addr + "/config-repo"
	pushToken := filepath.Join(t.dir, "push-token")
	if err := os.WriteFile(pushToken, []byte("push-only-token\n"), 0o600); err != nil {
		return err
	}
	commit := func(label string) (string, error) {
		return repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, label, nil), label)
	}

	c1, err := commit("c1")
	if err != nil {
		return err
	}
	var fleet []*harness.Stack
	for i := range 3 {
		st, err := fleetReplica(ctx, t, fmt.Sprintf("replica-%d", i), url, "--push-token-file", pushToken)
		if err != nil {
			return err
		}
		fleet = append(fleet, st)
	}
	if _, err := waitAllServed(ctx, t, fleet, c1, "c1", time.Now()); err != nil {
		return err
	}
	c2, err := commit("c2")
	if err != nil {
		return err
	}
	if _, err := waitAllServed(ctx, t, fleet, c2, "c2", time.Now()); err != nil {
		return err
	}
	t.Logf("3 replicas serve c2 (%s), the commit about to go bad", short(c2))

	// Rollback on one replica: every replica serves c1.
	start := time.Now()
	out, err := fleet[1].CLI(ctx, "rollback", "--reason", "c2 broke checkout")
	if err != nil {
		return err
	}
	t.Logf("replica-1: %s", trimLine(out))
	took, err := waitAllServed(ctx, t, fleet, c1, "c1", start)
	if err != nil {
		return err
	}
	t.Logf("rollback-to-served over 3 replicas (poll 1s): %v, max %v", roundAll(took), maxOf(took).Round(time.Millisecond))
	if pin, _ := repo.Git("rev-parse", "refs/tags/gitgate/main/pin^{commit}"); pin != c1 {
		return fmt.Errorf("pin tag at %q, want %s", pin, c1)
	}
	if bad, _ := repo.Git("rev-parse", "refs/tags/gitgate/main/bad/"+c2+"^{commit}"); bad != c2 {
		return fmt.Errorf("bad mark at %q, want %s", bad, c2)
	}
	if head, _ := repo.Head(); head != c2 {
		return fmt.Errorf("the branch moved to %s; it must never be rewritten", head)
	}

	// A replica started afterwards, without push rights, starts pinned.
	late, err := fleetReplica(ctx, t, "replica-late", url)
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, late, c1, "c1"); err != nil {
		return fmt.Errorf("late replica: %w", err)
	}
	var status struct {
		Mode     string `json:"mode"`
		PinScope string `json:"pinScope"`
	}
	out, err = late.CLI(ctx, "status", "--json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil || status.Mode != "pinned" || status.PinScope != "fleet" {
		return fmt.Errorf("late replica status: %+v (%v), want pinned with pinScope fleet", status, err)
	}
	hist, err := late.History(ctx)
	if err != nil {
		return err
	}
	for _, e := range hist {
		if e.SHA == c2 && e.Result != "skipped" {
			return fmt.Errorf("late replica's history has the bad commit %s as %s", short(c2), e.Result)
		}
	}
	t.Logf("late replica started pinned to c1 (pinScope fleet) and only skipped c2")

	// Fix forward: a new good commit lifts the pin everywhere.
	fleet = append(fleet, late)
	c3, err := commit("c3")
	if err != nil {
		return err
	}
	took, err = waitAllServed(ctx, t, fleet, c3, "c3", time.Now())
	if err != nil {
		return err
	}
	t.Logf("fix-forward c3 served by 4 replicas, max %v", maxOf(took).Round(time.Millisecond))
	if tags, _ := repo.Git("tag", "-l", "gitgate/main/pin"); tags != "" {
		return fmt.Errorf("the pin is still in the repository after fix forward")
	}
	deleted := 0
	for _, st := range fleet {
		b, _ := os.ReadFile(st.Agent.Log)
		deleted += strings.Count(string(b), "the fleet's pin is lifted in the repository")
	}
	if deleted != 1 {
		return fmt.Errorf("%d replicas say they deleted the pin, want exactly 1", deleted)
	}
	for i, st := range fleet {
		var s struct {
			Mode string `json:"mode"`
		}
		out, err := st.CLI(ctx, "status", "--json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil || s.Mode != "tracking" {
			return fmt.Errorf("replica %d after fix forward: mode %q (%v)", i, s.Mode, err)
		}
	}
	return nil
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func trimLine(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
