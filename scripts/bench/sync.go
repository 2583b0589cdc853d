package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// syncCommits is how many commits one -mode sync run times.
const syncCommits = 50

// syncRun is one run of -mode sync: push-to-serve latencies of every commit
// and the resident memory of both processes while idle.
type syncRun struct {
	lat                  []time.Duration
	agentRSS0, gwRSS0    int // KiB, idle after the first commit
	agentRSS, gatewayRSS int // KiB, idle after the measured commits
}

// pushToServe runs the real gateway and agent on a local config repository
// and, syncCommits times per run, commits a new route with the git CLI,
// sends a signed push webhook and polls the gateway every 2 ms until the
// new route answers with the new config. It reports webhook-sent to
// first-request-served latency (p50/p95/max per run and the medians over
// runs) and the idle RSS of the agent and the gateway.
func pushToServe(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	bins, err := harness.Build(ctx, root, filepath.Join(env.dir, "bin"))
	if err != nil {
		return "", err
	}
	var runs []syncRun
	for i := range max(cfg.runs, 1) {
		dir := filepath.Join(env.dir, fmt.Sprintf("sync-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		r, err := syncOnce(ctx, bins, dir, "http://"+env.upstream)
		if err != nil {
			return "", fmt.Errorf("sync run %d: %w (logs in %s)", i+1, err, dir)
		}
		fmt.Fprintf(os.Stderr, "sync run %d: p50 %s p95 %s\n", i+1, pct(r.lat, 0.50), pct(r.lat, 0.95))
		runs = append(runs, r)
	}
	return syncReport(runs), nil
}

func syncOnce(ctx context.Context, bins harness.Bins, dir, upstream string) (syncRun, error) {
	st, err := harness.NewStack(harness.Options{Bins: bins, Dir: dir})
	if err != nil {
		return syncRun{}, err
	}
	defer st.Close()
	extra := map[string]string{}
	first, err := st.Repo.WriteCommit("config.yaml", harness.ConfigYAML(upstream, "c0", extra), "base")
	if err != nil {
		return syncRun{}, err
	}
	if err := st.StartGateway(ctx); err != nil {
		return syncRun{}, err
	}
	if err := st.StartAgent(ctx); err != nil {
		return syncRun{}, err
	}
	if err := harness.WaitFor(ctx, 30*time.Second, "the first commit to be served", func() (bool, error) {
		return st.Converged(ctx, first)
	}); err != nil {
		return syncRun{}, err
	}
	var r syncRun
	idle := func() (agent, gw int, err error) {
		time.Sleep(5 * time.Second)
		if agent, err = harness.RSS(st.Agent.Pid()); err != nil {
			return 0, 0, err
		}
		gw, err = harness.RSS(st.Gateway.Pid())
		return agent, gw, err
	}
	if r.agentRSS0, r.gwRSS0, err = idle(); err != nil {
		return r, err
	}
	probe := &http.Client{Timeout: time.Second}
	defer probe.CloseIdleConnections()
	for i := 1; i <= syncCommits; i++ {
		label, path := fmt.Sprintf("c%d", i), fmt.Sprintf("/r%d", i)
		extra[path] = label
		if _, err := st.Repo.WriteCommit("config.yaml", harness.ConfigYAML(upstream, label, extra), "add route "+path); err != nil {
			return r, err
		}
		start := time.Now()
		if _, err := st.Webhook(ctx); err != nil {
			return r, err
		}
		for !served(probe, "http://"+st.GatewayAddr+path, label) {
			if time.Since(start) > 30*time.Second {
				return r, fmt.Errorf("commit %d: %s not served with %s after 30s", i, path, label)
			}
			select {
			case <-ctx.Done():
				return r, ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
		r.lat = append(r.lat, time.Since(start))
	}
	if r.agentRSS, r.gatewayRSS, err = idle(); err != nil {
		return r, err
	}
	return r, nil
}

// served reports whether url answers 200 from the config labelled want.
func served(c *http.Client, url, want string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Config") == want
}

// pct is the nearest-rank percentile of ds (p in (0,1]).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func syncReport(runs []syncRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Push-to-serve latency (signed webhook sent -> first request served by the new route)\n\n")
	fmt.Fprintf(&b, "%s\n\n", machineLine())
	fmt.Fprintf(&b, "%d commits per run, each adding a route; the gateway is polled every 2 ms. Goal: p50 under 300 ms.\n\n", syncCommits)
	b.WriteString("| run | p50 | p95 | max | agent RSS idle (start / after) | gateway RSS idle (start / after) |\n|---|---|---|---|---|---|\n")
	var p50s, p95s, maxs, aRSS, gRSS []float64
	for i, r := range runs {
		p50, p95, mx := pct(r.lat, 0.50), pct(r.lat, 0.95), pct(r.lat, 1)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s / %s | %s / %s |\n", i+1, ms(p50), ms(p95), ms(mx),
			mib(r.agentRSS0), mib(r.agentRSS), mib(r.gwRSS0), mib(r.gatewayRSS))
		p50s, p95s, maxs = append(p50s, float64(p50)), append(p95s, float64(p95)), append(maxs, float64(mx))
		aRSS, gRSS = append(aRSS, float64(r.agentRSS)), append(gRSS, float64(r.gatewayRSS))
	}
	fmt.Fprintf(&b, "| **median** | **%s** | **%s** | %s | %s (after) | %s (after) |\n",
		ms(time.Duration(median(p50s))), ms(time.Duration(median(p95s))), ms(time.Duration(median(maxs))),
		mib(int(median(aRSS))), mib(int(median(gRSS))))
	return b.String()
}
