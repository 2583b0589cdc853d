package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// fleetSize is how many agent+gateway pairs the fan-out scenario runs.
const fleetSize = 5

func init() {
	scenarios = append(scenarios, scenario{
		name: "s-fleet-fanout",
		criterion: fmt.Sprintf("%d agent+gateway pairs track one repository with --poll-interval 5m and --peers listing all "+
			"of them: one signed webhook to one replica, and every replica serves the new commit within 5 s (only the nudge "+
			"can explain it); each peer took exactly one nudge and sent none (no storm); `agent fleet` exits 0. With one "+
			"replica killed (SIGKILL), the next webhook still reaches every live replica and `agent fleet` reports the "+
			"dead one unreachable and exits 1", fleetSize),
		run: fleetFanout,
	})
}

func fleetFanout(ctx context.Context, t *T) error {
	repo, err := harness.NewRepo(filepath.Join(t.dir, "config-repo"))
	if err != nil {
		return err
	}
	c1, err := repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, "c1", nil), "c1")
	if err != nil {
		return err
	}
	var fleet []*harness.Stack
	var hooks []string
	for i := range fleetSize {
		st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: filepath.Join(t.dir, fmt.Sprintf("r%d", i)), RepoURL: repo.Dir, PollInterval: "5m"})
		if err != nil {
			return err
		}
		t.Cleanup(st.Close)
		fleet = append(fleet, st)
		hooks = append(hooks, st.HookAddr)
	}
	peers := strings.Join(hooks, ",") // each replica leaves itself out
	for _, st := range fleet {
		st.AgentExtraArgs = []string{"--peers", peers}
		if err := st.StartGateway(ctx); err != nil {
			return err
		}
		if err := st.StartAgent(ctx); err != nil {
			return err
		}
	}
	for _, st := range fleet {
		if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
			return err
		}
	}
	t.Logf("%d replicas serve c1; poll interval 5m", fleetSize)

	c2, took, err := pushToOne(ctx, t, repo, fleet[0], fleet, "c2")
	if err != nil {
		return err
	}
	t.Logf("c2 (%s): webhook to replica 0 only; push-to-serve over %d replicas: %s", short(c2), fleetSize, spread(took))
	for i, st := range fleet[1:] {
		_, metrics, err := st.HookGet(ctx, "/metrics")
		if err != nil {
			return err
		}
		got, sent := metricValue(metrics, `gitgate_agent_nudges_received_total{result="accepted"}`), metricValue(metrics, `gitgate_agent_nudges_sent_total{result="accepted"}`)
		if got != 1 || sent > 0 {
			return fmt.Errorf("replica %d took %v nudges and sent %v, want 1 and none", i+1, got, sent)
		}
	}
	t.Logf("each peer took one nudge and sent none")
	if out, code, err := agentFleet(ctx, t, peers); err != nil || code != 0 {
		return fmt.Errorf("agent fleet with every replica on c2: exit %d (%v), want 0:\n%s", code, err, out)
	}

	dead := fleet[fleetSize-1]
	dead.Agent.Kill9()
	dead.Gateway.Kill9()
	live := fleet[:fleetSize-1]
	c3, took, err := pushToOne(ctx, t, repo, fleet[0], live, "c3")
	if err != nil {
		return err
	}
	t.Logf("replica %d killed; c3 (%s) served by the %d live replicas: %s", fleetSize-1, short(c3), len(live), spread(took))
	out, code, err := agentFleet(ctx, t, peers)
	if err != nil {
		return err
	}
	if code != 1 || !strings.Contains(out, dead.HookAddr+"  no") {
		return fmt.Errorf("agent fleet with replica %s dead: exit %d, want 1 and it unreachable:\n%s", dead.HookAddr, code, out)
	}
	t.Logf("agent fleet exits 1 and names %s unreachable:\n        %s", dead.HookAddr, strings.ReplaceAll(strings.TrimSpace(out), "\n", "\n        "))
	return nil
}

// pushToOne commits the config labelled label, sends one signed webhook to
// to, and returns how long each replica of fleet took to serve it.
func pushToOne(ctx context.Context, t *T, repo *harness.Repo, to *harness.Stack, fleet []*harness.Stack, label string) (string, []time.Duration, error) {
	sha, err := repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, label, nil), label)
	if err != nil {
		return "", nil, err
	}
	start := time.Now()
	if _, err := to.Webhook(ctx); err != nil {
		return "", nil, err
	}
	took := make([]time.Duration, len(fleet))
	errs := make([]error, len(fleet))
	var wg sync.WaitGroup
	for i, st := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = harness.WaitFor(ctx, 5*time.Second, fmt.Sprintf("replica %d to serve %s", i, label), func() (bool, error) {
				return st.Get("/").OK(label), nil
			})
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return "", nil, err
		}
	}
	return sha, took, nil
}

// agentFleet runs `agent fleet --peers peers` and returns its output and
// exit code.
func agentFleet(ctx context.Context, t *T, peers string) (string, int, error) {
	cmd := exec.CommandContext(ctx, t.bins.Agent, "fleet", "--peers", peers)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		return string(out), -1, fmt.Errorf("agent fleet: %w", err)
	}
	return string(out), cmd.ProcessState.ExitCode(), nil
}

// spread formats the p50 and max of ds.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("p50 %s, max %s", s[(len(s)-1)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
