package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "rd-fleet-rate-limit",
		criterion: "with Debian's redis-server (installed when missing) on loopback: two agent+gateway pairs apply one " +
			"config whose /limited route has a rateLimit of 10 per minute (key route) with store: redis; 60 requests " +
			"alternating between the two gateways are admitted about 10 times in total (10-12: one shared bucket, " +
			"not 2x); redis-server is killed and started again (empty) while 4 clients load both gateways: no request " +
			"fails (only 200 or 429), each gateway's gitgate_policy_rate_limit_store_fallback rises to 1 during the " +
			"outage and falls to 0 after it, Redis decides again (its limited count grows), and both logs say the " +
			"store was lost and came back; and the policy tests against a real redis-server pass with it required",
		run: redisFleetRateLimit,
	})
}

// redisRLConfig is harness.ConfigYAML with /limited behind a store-redis
// rate limit of 10 per minute shared by every request (key route).
func redisRLConfig(upstream, label, redisAddr string) string {
	cfg := harness.ConfigYAML(upstream, label, map[string]string{"/limited": label})
	cfg = strings.Replace(cfg, "  extra0:\n", "  extra0:\n    policies: [rl]\n", 1)
	return cfg + fmt.Sprintf("policies:\n  rl:\n    rateLimit:\n      rate: 10\n      per: 1m\n      key: route\n"+
		"      store: redis\n      onStoreError: local\n      redis:\n        address: %q\n        timeout: 100ms\n", redisAddr)
}

func redisFleetRateLimit(ctx context.Context, t *T) error {
	if err := ensureRedis(ctx, t); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(t.dir, "redis"), 0o755); err != nil {
		return err
	}
	rs, err := harness.StartRedis(filepath.Join(t.dir, "redis"))
	if err != nil {
		return err
	}
	t.Cleanup(rs.Stop)

	repo, err := harness.NewRepo(filepath.Join(t.dir, "config-repo"))
	if err != nil {
		return err
	}
	sha, err := repo.WriteCommit("config.yaml", redisRLConfig(t.upstream, "c1", rs.Addr), "c1: /limited by a fleet-wide limit")
	if err != nil {
		return err
	}
	var fleet []*harness.Stack
	for i := range 2 {
		st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: filepath.Join(t.dir, fmt.Sprintf("g%d", i)), RepoURL: repo.Dir})
		if err != nil {
			return err
		}
		t.Cleanup(st.Close)
		if err := st.StartGateway(ctx); err != nil {
			return err
		}
		if err := st.StartAgent(ctx); err != nil {
			return err
		}
		fleet = append(fleet, st)
	}
	for _, st := range fleet {
		if err := t.waitServed(ctx, st, sha, "c1"); err != nil {
			return err
		}
	}

	// One shared bucket: 60 requests alternating between the gateways.
	admitted, refused := 0, 0
	for i := range 60 {
		switch r := fleet[i%2].Get("/limited"); r.Code {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			refused++
		default:
			return fmt.Errorf("request %d to gateway %d: %s, want 200 or 429", i, i%2, r)
		}
	}
	if admitted < 10 || admitted > 12 {
		return fmt.Errorf("two gateways admitted %d of 60 under a limit of 10/min, want 10-12 (one shared bucket)", admitted)
	}
	t.Logf("two gateways, one limit of 10/min in redis: %d admitted, %d refused of 60 (local buckets would admit 20)", admitted, refused)

	// Redis restarts under load.
	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstFail atomic.Value
	for c := range 4 {
		wg.Go(func() {
			st := fleet[c%2]
			for loadCtx.Err() == nil {
				r := st.Get("/limited")
				sent.Add(1)
				if r.Code != http.StatusOK && r.Code != http.StatusTooManyRequests {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, r.String())
				}
			}
		})
	}
	stopLoad := func() { stop(); wg.Wait() }
	defer stopLoad()
	redisLimited := make([]float64, len(fleet))
	for i, st := range fleet {
		m, err := gatewayMetrics(ctx, st)
		if err != nil {
			return err
		}
		redisLimited[i] = metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="limited",store="redis"}`)
	}
	rs.Stop()
	for i, st := range fleet {
		if err := waitMetric(ctx, st, `gitgate_policy_rate_limit_store_fallback{policy="rl"}`, 1); err != nil {
			return fmt.Errorf("gateway %d with redis down: %w", i, err)
		}
	}
	t.Logf("redis killed under load: both gateways report gitgate_policy_rate_limit_store_fallback 1")
	if err := rs.Restart(); err != nil {
		return err
	}
	for i, st := range fleet {
		if err := waitMetric(ctx, st, `gitgate_policy_rate_limit_store_fallback{policy="rl"}`, 0); err != nil {
			return fmt.Errorf("gateway %d after redis restarted: %w", i, err)
		}
		err := harness.WaitFor(ctx, 10*time.Second, fmt.Sprintf("gateway %d to be limited by redis again", i), func() (bool, error) {
			m, err := gatewayMetrics(ctx, st)
			return err == nil && metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="limited",store="redis"}`) > redisLimited[i], nil
		})
		if err != nil {
			return err
		}
	}
	stopLoad()
	if n := failed.Load(); n != 0 {
		return fmt.Errorf("%d of %d requests under load failed across the redis restart (first: %v)", n, sent.Load(), firstFail.Load())
	}
	for i, st := range fleet {
		if !logContains(st.Gateway.Log, "rate-limit store unreachable") || !logContains(st.Gateway.Log, "rate-limit store reachable again") {
			return fmt.Errorf("gateway %d's log does not report the store's loss and return (see %s)", i, st.Gateway.Log)
		}
		m, err := gatewayMetrics(ctx, st)
		if err != nil {
			return err
		}
		t.Logf("gateway %d: decisions redis %v/%v local %v/%v (allowed/limited), store errors %v", i,
			metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="allowed",store="redis"}`),
			metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="limited",store="redis"}`),
			metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="allowed",store="local"}`),
			metricValue(m, `gitgate_policy_rate_limit_decisions_total{policy="rl",result="limited",store="local"}`),
			metricValue(m, `gitgate_policy_rate_limit_store_errors_total{policy="rl"}`))
	}
	t.Logf("redis restarted under load: %d requests, none failed; fallback 1 then 0, redis limits again, logs say lost and back", sent.Load())
	return redisPolicyTests(ctx, t)
}

// redisPolicyTests runs the policy package's tests against a real
// redis-server with it required, so they cannot skip here.
func redisPolicyTests(ctx context.Context, t *T) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^TestRedis", "./gateway/internal/policy/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), harness.RequireRedisEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("TestRedis* against a real redis-server: %w\n%s", err, out)
	}
	passed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "--- SKIP") {
			return fmt.Errorf("a redis test skipped although redis-server is required:\n%s", out)
		}
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "--- PASS: TestRedis") && !strings.Contains(l, "/") {
			passed++
		}
	}
	if passed < 6 {
		return fmt.Errorf("%d TestRedis* tests passed, want 6:\n%s", passed, out)
	}
	t.Logf("the policy package's %d TestRedis* tests pass against a real redis-server", passed)
	return nil
}

// gatewayMetrics reads the gateway's /metrics from its admin socket.
func gatewayMetrics(ctx context.Context, st *harness.Stack) (string, error) {
	code, body, err := st.AdminGet(ctx, "/metrics")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("gateway /metrics: status %d", code)
	}
	return body, nil
}

// waitMetric waits until the gateway's metric series name has value want.
func waitMetric(ctx context.Context, st *harness.Stack, name string, want float64) error {
	return harness.WaitFor(ctx, 10*time.Second, fmt.Sprintf("%s to be %v", name, want), func() (bool, error) {
		m, err := gatewayMetrics(ctx, st)
		return err == nil && metricValue(m, name) == want, nil
	})
}

// ensureRedis installs Debian's redis-server when it is missing (without
// starting its service: the scenario runs its own server).
func ensureRedis(ctx context.Context, t *T) error {
	_, err := ensureTool(ctx, t, debianTool{name: "redis-server", path: harness.RedisBinary, pkg: "redis-server"})
	return err
}
