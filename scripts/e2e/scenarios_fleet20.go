package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// fleet20Size is how many agent+gateway pairs u-fleet-20 starts at once; one
// more joins late.
const fleet20Size = 20

// fleet20Wait bounds each fleet-wide wait: only a nudge can explain a
// replica converging within it, the poll interval being 5m.
const fleet20Wait = 10 * time.Second

func init() {
	scenarios = append(scenarios, scenario{
		name: "u-fleet-20",
		criterion: fmt.Sprintf("%d agent+gateway pairs (started in parallel; --poll-interval 5m, static --peers, a push "+
			"token each) track one repository served by `git http-backend` with push enabled. One signed webhook to "+
			"one replica: every replica serves the new commit within %s. `agent rollback` on another: every replica "+
			"serves the rolled-back commit within %s; a pair started afterwards with an empty state dir starts pinned "+
			"(pinScope fleet) and never applies the bad commit; a new good commit + webhook lifts the pin everywhere "+
			"(every replica tracking, the pin tag deleted by exactly one). One gateway edited by hand (its agent heals only hourly): "+
			"`agent fleet` exits 1 naming its drift, and 0 after `agent sync` on it. One replica SIGKILLed: the next "+
			"webhook still reaches every live replica, and `agent fleet` exits 1 naming the dead one unreachable",
			fleet20Size, fleet20Wait, fleet20Wait),
		run: fleet20,
	})
}

func fleet20(ctx context.Context, t *T) error {
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
	commit := func(label string) (string, error) {
		return repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, label, nil), label)
	}
	c1, err := commit("c1")
	if err != nil {
		return err
	}

	// fleet20Size pairs plus one that joins late; every peers list names
	// all of them, so the late one is nudged once it runs.
	stacks := make([]*harness.Stack, fleet20Size+1)
	hooks := make([]string, len(stacks))
	for i := range stacks {
		st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: filepath.Join(t.dir, fmt.Sprintf("r%02d", i)), RepoURL: srv.URL("config-repo"), PollInterval: "5m"})
		if err != nil {
			return err
		}
		t.Cleanup(st.Close)
		stacks[i], hooks[i] = st, st.HookAddr
	}
	peers := strings.Join(hooks, ",")
	fleet, late := stacks[:fleet20Size], stacks[fleet20Size]
	edited := fleet[fleet20Size-2] // its agent heals only hourly
	for _, st := range fleet {
		st.AgentExtraArgs = []string{"--peers", peers, "--push-token-file", pushToken}
		if st == edited {
			st.AgentExtraArgs = append(st.AgentExtraArgs, "--heal-interval", "1h")
		}
	}
	late.AgentExtraArgs = []string{"--peers", peers}

	start := time.Now()
	if err := startAll(ctx, fleet); err != nil {
		return err
	}
	if _, err := waitAllServed(ctx, t, fleet, c1, "c1", start); err != nil {
		return err
	}
	t.Logf("%d pairs started in parallel and serve c1 after %s", fleet20Size, time.Since(start).Round(time.Millisecond))

	// One webhook to one replica.
	c2, took, err := pushWebhook(ctx, t, commit, fleet[0], fleet, "c2")
	if err != nil {
		return err
	}
	t.Logf("c2 (%s): one webhook to r00; push-to-serve over %d replicas: %s", short(c2), len(fleet), spread(took))
	c3, took, err := pushWebhook(ctx, t, commit, fleet[0], fleet, "c3")
	if err != nil {
		return err
	}
	t.Logf("c3 (%s), the commit about to go bad, served everywhere: %s", short(c3), spread(took))

	// `agent rollback` on one replica rolls the whole fleet back.
	start = time.Now()
	out, err := fleet[7].CLI(ctx, "rollback", "--reason", "c3 broke checkout")
	if err != nil {
		return err
	}
	t.Logf("r07: %s", trimLine(out))
	took, err = waitAllServedWithin(ctx, fleet, c2, "c2", start)
	if err != nil {
		return fmt.Errorf("after the rollback on r07: %w", err)
	}
	t.Logf("rollback-to-served over %d replicas: %s", len(fleet), spread(took))
	if pin, _ := repo.Git("rev-parse", "refs/tags/gitgate/main/pin^{commit}"); pin != c2 {
		return fmt.Errorf("pin tag at %q, want %s", pin, c2)
	}

	// A pair started afterwards with an empty state dir starts pinned.
	if err := startAll(ctx, []*harness.Stack{late}); err != nil {
		return err
	}
	if err := t.waitServed(ctx, late, c2, "c2"); err != nil {
		return fmt.Errorf("late replica: %w", err)
	}
	if err := pinnedFleetWide(ctx, late, c3); err != nil {
		return fmt.Errorf("late replica: %w", err)
	}
	t.Logf("r%02d, started now with an empty state dir, serves c2 pinned (pinScope fleet) and never applied c3", fleet20Size)

	// Fix forward: a new good commit and one webhook lift the pin everywhere.
	all := stacks
	c4, took, err := pushWebhook(ctx, t, commit, fleet[0], all, "c4")
	if err != nil {
		return fmt.Errorf("fix forward: %w", err)
	}
	t.Logf("fix-forward c4 (%s) served by all %d replicas: %s", short(c4), len(all), spread(took))
	if tags, _ := repo.Git("tag", "-l", "gitgate/main/pin"); tags != "" {
		return errors.New("the pin tag is still in the repository after fix forward")
	}
	for i, st := range all {
		if err := harness.WaitFor(ctx, fleet20Wait, fmt.Sprintf("r%02d to track the branch", i), func() (bool, error) {
			s, err := st.AgentStatus(ctx)
			return err == nil && s.Mode == "tracking", nil
		}); err != nil {
			return err
		}
	}
	deleted := 0
	for _, st := range all {
		b, _ := os.ReadFile(st.Agent.Log)
		deleted += strings.Count(string(b), "the fleet's pin is lifted in the repository")
	}
	if deleted != 1 {
		return fmt.Errorf("%d replicas say they deleted the pin, want exactly 1", deleted)
	}
	t.Logf("every replica tracks the branch again; the pin tag is gone, deleted by exactly one replica")
	if out, code, err := agentFleet(ctx, t, peers); err != nil || code != 0 {
		return fmt.Errorf("agent fleet with every replica on c4: exit %d (%v), want 0:\n%s", code, err, out)
	}

	// One gateway edited by hand: agent fleet names its drift, then the heal.
	if err := handEdit(ctx, edited, "hand"); err != nil {
		return err
	}
	out, code, err := agentFleet(ctx, t, peers)
	if err != nil {
		return err
	}
	if line := fleetLine(out, edited.HookAddr); code != 1 || !strings.Contains(line, "drift") {
		return fmt.Errorf("agent fleet with %s edited by hand: exit %d, want 1 and its drift named:\n%s", edited.HookAddr, code, out)
	}
	t.Logf("gateway of %s edited by hand: agent fleet exits 1: %s", edited.HookAddr, strings.Join(strings.Fields(fleetLine(out, edited.HookAddr)), " "))
	if _, err := edited.CLI(ctx, "sync"); err != nil {
		return err
	}
	if err := t.waitServed(ctx, edited, c4, "c4"); err != nil {
		return err
	}
	if out, code, err := agentFleet(ctx, t, peers); err != nil || code != 0 {
		return fmt.Errorf("agent fleet after `agent sync` healed %s: exit %d (%v), want 0:\n%s", edited.HookAddr, code, err, out)
	}
	t.Logf("after `agent sync` on it, agent fleet exits 0")

	// One peer killed: fan-out and agent fleet carry on and report it.
	dead := fleet[fleet20Size-1]
	dead.Agent.Kill9()
	dead.Gateway.Kill9()
	live := append(append([]*harness.Stack{}, fleet[:fleet20Size-1]...), late)
	c5, took, err := pushWebhook(ctx, t, commit, fleet[0], live, "c5")
	if err != nil {
		return fmt.Errorf("with %s killed: %w", dead.HookAddr, err)
	}
	t.Logf("%s killed; c5 (%s) served by the %d live replicas: %s", dead.HookAddr, short(c5), len(live), spread(took))
	out, code, err = agentFleet(ctx, t, peers)
	if err != nil {
		return err
	}
	if line := fleetLine(out, dead.HookAddr); code != 1 || !strings.HasPrefix(strings.Join(strings.Fields(line), " "), dead.HookAddr+" no") {
		return fmt.Errorf("agent fleet with %s dead: exit %d, want 1 and it unreachable:\n%s", dead.HookAddr, code, out)
	}
	for _, st := range live {
		if line := fleetLine(out, st.HookAddr); !strings.Contains(line, " yes ") {
			return fmt.Errorf("agent fleet with %s dead reports live %s as: %q", dead.HookAddr, st.HookAddr, line)
		}
	}
	t.Logf("agent fleet exits 1: %s; %s", strings.Join(strings.Fields(fleetLine(out, dead.HookAddr)), " "), lastLine(out))
	return nil
}

// startAll starts every stack's gateway and agent in parallel and waits
// until all answer.
func startAll(ctx context.Context, stacks []*harness.Stack) error {
	errs := make([]error, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.StartGateway(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", st.Dir, err)
				return
			}
			if err := st.StartAgent(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", st.Dir, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pushWebhook commits the config labelled label, sends one signed webhook
// to to, and returns how long each of fleet took to apply and serve it.
func pushWebhook(ctx context.Context, t *T, commit func(string) (string, error), to *harness.Stack, fleet []*harness.Stack, label string) (string, []time.Duration, error) {
	sha, err := commit(label)
	if err != nil {
		return "", nil, err
	}
	start := time.Now()
	if _, err := to.Webhook(ctx); err != nil {
		return "", nil, err
	}
	took, err := waitAllServedWithin(ctx, fleet, sha, label, start)
	return sha, took, err
}

// waitAllServedWithin waits, at most fleet20Wait, until every stack has
// applied sha and serves label, and returns how long each took after since.
func waitAllServedWithin(ctx context.Context, stacks []*harness.Stack, sha, label string, since time.Time) ([]time.Duration, error) {
	took := make([]time.Duration, len(stacks))
	errs := make([]error, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = harness.WaitFor(ctx, fleet20Wait-time.Since(since), fmt.Sprintf("%s to serve %s (%s)", filepath.Base(st.Dir), label, short(sha)), func() (bool, error) {
				return st.Get("/").OK(label), nil
			})
			took[i] = time.Since(since)
			if errs[i] == nil {
				errs[i] = harness.WaitFor(ctx, fleet20Wait, filepath.Base(st.Dir)+" to record "+short(sha), func() (bool, error) {
					return st.Converged(ctx, sha)
				})
			}
		}()
	}
	wg.Wait()
	return took, errors.Join(errs...)
}

// pinnedFleetWide checks st is pinned by the fleet's pin and never applied
// bad.
func pinnedFleetWide(ctx context.Context, st *harness.Stack, bad string) error {
	var status struct {
		Mode     string `json:"mode"`
		PinScope string `json:"pinScope"`
	}
	out, err := st.CLI(ctx, "status", "--json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil || status.Mode != "pinned" || status.PinScope != "fleet" {
		return fmt.Errorf("status %+v (%v), want pinned with pinScope fleet", status, err)
	}
	hist, err := st.History(ctx)
	if err != nil {
		return err
	}
	for _, e := range hist {
		if e.SHA == bad && e.Result != "skipped" {
			return fmt.Errorf("its history has the bad commit %s as %s", short(bad), e.Result)
		}
	}
	return nil
}

// fleetLine is the row of `agent fleet`'s table for the replica at addr.
func fleetLine(out, addr string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, addr+" ") {
			return l
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
