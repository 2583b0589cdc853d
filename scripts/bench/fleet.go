package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// fleetRun holds what -mode fleet measured.
type fleetRun struct {
	replicas int
	startup  time.Duration
	// push and rollback are, per round, how long each replica took to serve
	// the new (or rolled-back) config after the webhook (or `agent
	// rollback`) was sent.
	push, rollback, fixForward [][]time.Duration
	// idle are the Git requests the server answered during each idle window.
	idle []idleWindow
}

// idleWindow is the Git traffic of an idle fleet over one window.
type idleWindow struct {
	state  string // what the fleet was doing: tracking, pinned
	poll   time.Duration
	window time.Duration
	counts map[string]int
}

// fleetBench runs cfg.replicas agent+gateway pairs on loopback, each with
// --peers naming all of them and a push token, tracking one repository
// served by `git http-backend` (push enabled) that counts requests. With a
// 5m poll interval, so that only the nudges explain the speed, it times
// push-to-serve (commit, one signed webhook to one replica, then every
// gateway polled every 2 ms until it serves the new config) and
// rollback-to-served (`agent rollback` on one replica until every gateway
// serves the previous config), cfg.runs rounds each. Then it restarts the
// agents with cfg.idlePoll and counts the Git requests of the idle fleet
// over cfg.idle, tracking and then pinned.
func fleetBench(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	bins, err := harness.Build(ctx, root, filepath.Join(env.dir, "bin"))
	if err != nil {
		return "", err
	}
	dir := filepath.Join(env.dir, "fleet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	r, err := fleetOnce(ctx, cfg, bins, dir, "http://"+env.upstream)
	if err != nil {
		return "", fmt.Errorf("fleet: %w", err)
	}
	return fleetReport(cfg, r), nil
}

func fleetOnce(ctx context.Context, cfg benchConfig, bins harness.Bins, dir, upstream string) (fleetRun, error) {
	r := fleetRun{replicas: cfg.replicas}
	srv, err := harness.ServeGit(dir)
	if err != nil {
		return r, err
	}
	defer srv.Close()
	repo, err := harness.NewRepo(filepath.Join(dir, "config-repo"))
	if err != nil {
		return r, err
	}
	if _, err := repo.Git("config", "http.receivepack", "true"); err != nil {
		return r, err
	}
	pushToken := filepath.Join(dir, "push-token")
	if err := os.WriteFile(pushToken, []byte("bench-push-token\n"), 0o600); err != nil {
		return r, err
	}
	n := 0
	commit := func() (string, string, error) {
		n++
		label := fmt.Sprintf("c%d", n)
		sha, err := repo.WriteCommit("config.yaml", harness.ConfigYAML(upstream, label, nil), label)
		return sha, label, err
	}
	_, label, err := commit()
	if err != nil {
		return r, err
	}

	stacks := make([]*harness.Stack, cfg.replicas)
	hooks := make([]string, cfg.replicas)
	for i := range stacks {
		st, err := harness.NewStack(harness.Options{Bins: bins, Dir: filepath.Join(dir, fmt.Sprintf("r%02d", i)), RepoURL: srv.URL("config-repo"), PollInterval: "5m"})
		if err != nil {
			return r, err
		}
		defer st.Close()
		stacks[i], hooks[i] = st, st.HookAddr
	}
	for _, st := range stacks {
		st.AgentExtraArgs = []string{"--peers", strings.Join(hooks, ","), "--push-token-file", pushToken, "--log-level", "warn"}
	}
	probes := make([]*http.Client, len(stacks))
	for i := range probes {
		probes[i] = &http.Client{Timeout: time.Second}
		defer probes[i].CloseIdleConnections()
	}
	start := time.Now()
	if err := inParallel(stacks, func(st *harness.Stack) error {
		if err := st.StartGateway(ctx); err != nil {
			return err
		}
		return st.StartAgent(ctx)
	}); err != nil {
		return r, err
	}
	if _, err := timeServed(ctx, stacks, probes, label, start); err != nil {
		return r, err
	}
	r.startup = time.Since(start)
	fmt.Fprintf(os.Stderr, "fleet: %d replicas serve c1 after %s\n", len(stacks), r.startup.Round(time.Millisecond))

	push := func(to *harness.Stack) (string, []time.Duration, error) {
		_, label, err := commit()
		if err != nil {
			return "", nil, err
		}
		start := time.Now()
		if _, err := to.Webhook(ctx); err != nil {
			return "", nil, err
		}
		took, err := timeServed(ctx, stacks, probes, label, start)
		return label, took, err
	}
	for round := range cfg.runs {
		_, took, err := push(stacks[round%len(stacks)])
		if err != nil {
			return r, fmt.Errorf("push round %d: %w", round+1, err)
		}
		r.push = append(r.push, took)
		fmt.Fprintf(os.Stderr, "fleet: push-to-serve round %d: p50 %s max %s\n", round+1, pct(took, 0.5), pct(took, 1))
	}
	for round := range cfg.runs {
		good := fmt.Sprintf("c%d", n)
		if _, _, err := push(stacks[0]); err != nil { // the commit about to go bad
			return r, fmt.Errorf("rollback round %d: %w", round+1, err)
		}
		by := stacks[(round*7+3)%len(stacks)]
		start := time.Now()
		if _, err := by.CLI(ctx, "rollback", "--reason", "bench"); err != nil {
			return r, err
		}
		took, err := timeServed(ctx, stacks, probes, good, start)
		if err != nil {
			return r, fmt.Errorf("rollback round %d: %w", round+1, err)
		}
		r.rollback = append(r.rollback, took)
		_, took, err = push(stacks[0]) // fix forward
		if err != nil {
			return r, fmt.Errorf("fix forward round %d: %w", round+1, err)
		}
		r.fixForward = append(r.fixForward, took)
		if err := waitTracking(ctx, stacks); err != nil {
			return r, err
		}
		fmt.Fprintf(os.Stderr, "fleet: rollback-to-served round %d: p50 %s max %s; fix forward max %s\n", round+1, pct(r.rollback[round], 0.5), pct(r.rollback[round], 1), pct(took, 1))
	}

	// Idle: the same agents restarted with a short poll interval.
	if err := inParallel(stacks, func(st *harness.Stack) error { return st.Agent.Stop() }); err != nil {
		return r, err
	}
	for _, st := range stacks {
		st.PollInterval = cfg.idlePoll.String()
	}
	if err := inParallel(stacks, func(st *harness.Stack) error { return st.StartAgent(ctx) }); err != nil {
		return r, err
	}
	if err := waitTracking(ctx, stacks); err != nil {
		return r, err
	}
	idle := func(state string) error {
		// Let the start-up checks and any straggler end first.
		if err := sleep(ctx, cfg.idlePoll); err != nil {
			return err
		}
		before := srv.Counts()
		if err := sleep(ctx, cfg.idle); err != nil {
			return err
		}
		after := srv.Counts()
		for k := range after {
			after[k] -= before[k]
		}
		w := idleWindow{state: state, poll: cfg.idlePoll, window: cfg.idle, counts: after}
		r.idle = append(r.idle, w)
		fmt.Fprintf(os.Stderr, "fleet: idle %s, poll %s, %s: %v (%.1f per replica per minute)\n", state, w.poll, w.window, w.counts, w.perReplicaMinute(len(stacks), total(w.counts)))
		return nil
	}
	if err := idle("tracking"); err != nil {
		return r, err
	}
	good := fmt.Sprintf("c%d", n)
	if _, _, err := push(stacks[0]); err != nil {
		return r, err
	}
	if _, err := stacks[1].CLI(ctx, "rollback", "--reason", "bench idle while pinned"); err != nil {
		return r, err
	}
	if _, err := timeServed(ctx, stacks, probes, good, time.Now()); err != nil {
		return r, err
	}
	if err := idle("pinned"); err != nil {
		return r, err
	}
	return r, nil
}

// inParallel runs fn on every stack at once and joins the errors.
func inParallel(stacks []*harness.Stack, fn func(*harness.Stack) error) error {
	errs := make([]error, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(st); err != nil {
				errs[i] = fmt.Errorf("%s: %w", filepath.Base(st.Dir), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// timeServed polls every gateway every 2 ms until it serves the config
// labelled label, at most 30 s, and returns how long after since each
// first did.
func timeServed(ctx context.Context, stacks []*harness.Stack, probes []*http.Client, label string, since time.Time) ([]time.Duration, error) {
	took := make([]time.Duration, len(stacks))
	errs := make([]error, len(stacks))
	var wg sync.WaitGroup
	for i, st := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !served(probes[i], "http://"+st.GatewayAddr+"/", label) {
				if time.Since(since) > 30*time.Second {
					errs[i] = fmt.Errorf("%s: %s not served after 30s (logs in %s)", filepath.Base(st.Dir), label, st.Dir)
					return
				}
				if err := sleep(ctx, 2*time.Millisecond); err != nil {
					errs[i] = err
					return
				}
			}
			took[i] = time.Since(since)
		}()
	}
	wg.Wait()
	return took, errors.Join(errs...)
}

// waitTracking waits until every agent tracks the branch (no pin).
func waitTracking(ctx context.Context, stacks []*harness.Stack) error {
	return inParallel(stacks, func(st *harness.Stack) error {
		return harness.WaitFor(ctx, 30*time.Second, "the agent to track the branch", func() (bool, error) {
			s, err := st.AgentStatus(ctx)
			return err == nil && s.Mode == "tracking", nil
		})
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// perReplicaMinute is count requests spread over replicas and the window.
func (w idleWindow) perReplicaMinute(replicas, count int) float64 {
	return float64(count) / float64(replicas) / w.window.Minutes()
}

func fleetReport(cfg benchConfig, r fleetRun) string {
	all := func(rounds [][]time.Duration) []time.Duration { return slices.Concat(rounds...) }
	var b strings.Builder
	fmt.Fprintf(&b, "## Fleet: %d agent+gateway pairs, one repository behind `git http-backend`\n\n", r.replicas)
	fmt.Fprintf(&b, "%s\n\n", fleetMachineLine())
	fmt.Fprintf(&b, "`go run ./scripts/bench -mode fleet`: %d pairs on loopback, each agent with `--peers` naming all of them, "+
		"a push token and `--poll-interval 5m` (so only the nudges explain the speed); every gateway is polled every 2 ms. "+
		"%d rounds each; p50 and max are over replicas. Start-up (all pairs in parallel, empty state): %s.\n\n",
		r.replicas, cfg.runs, ms(r.startup))
	b.WriteString("| measure | round | p50 over replicas | max over replicas | goal |\n|---|---|---|---|---|\n")
	rows := func(name, goal string, rounds [][]time.Duration) {
		for i, took := range rounds {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", name, i+1, ms(pct(took, 0.5)), ms(pct(took, 1)), goal)
		}
		fmt.Fprintf(&b, "| **%s** | all | **%s** | **%s** | %s |\n", name, ms(pct(all(rounds), 0.5)), ms(pct(all(rounds), 1)), goal)
	}
	rows("push-to-serve (one webhook to one replica)", "max < 1 s", r.push)
	rows("rollback-to-served (`agent rollback` on one replica)", "max < 1 s", r.rollback)
	rows("fix forward (new commit + webhook lifts the pin)", "-", r.fixForward)
	b.WriteString("\nGit requests of the idle fleet, counted at the server (agents restarted with a short poll interval):\n\n")
	b.WriteString("| fleet | poll | window | head checks (GET info/refs) | fetches (POST upload-pack) | other | requests per replica per minute | requests per replica per poll | goal |\n|---|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, w := range r.idle {
		other := total(w.counts) - w.counts[harness.GitAdvertise] - w.counts[harness.GitUploadPack]
		perMin := w.perReplicaMinute(r.replicas, total(w.counts))
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %.1f | %.2f | ≤ 1 head check per poll (%.0f/min), no fetch |\n", w.state, w.poll, w.window,
			w.counts[harness.GitAdvertise], w.counts[harness.GitUploadPack], other,
			perMin, perMin*w.poll.Minutes(), time.Minute.Seconds()/w.poll.Seconds())
	}
	b.WriteString("\nThe poll interval is jittered ±10%, so a window holds one poll more or less per replica.\n")
	return b.String()
}

// fleetMachineLine describes the host without the proxies -mode fleet does
// not use.
func fleetMachineLine() string {
	host, _ := os.Hostname()
	git, _ := exec.Command("git", "--version").Output()
	return fmt.Sprintf("%s, %d CPUs, %s; %s; %s", host, runtime.NumCPU(), runtime.Version(), strings.TrimSpace(string(git)), time.Now().UTC().Format(time.RFC3339))
}
