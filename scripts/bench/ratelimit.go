package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// rateLimitBench measures one route behind a rate limit that never refuses
// (rate 1e9/s, key route: every request spends from one bucket) kept in
// the gateway's memory and in a redis-server on loopback, beside the same
// route without a policy, interleaved in one run: the cost per request of
// one Lua script round trip to Redis. redis-server shares CPU 1 with the
// gateway and the upstream.
func rateLimitBench(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rs, err := startProc(env.dir, "redis", env.proxyCPU, nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", env.dir)
	if err != nil {
		return "", err
	}
	defer rs.stop()
	if err := rs.waitListening(ctx, addr); err != nil {
		return "", fmt.Errorf("redis-server did not start: %w", err)
	}
	local := schemas.RateLimit{Rate: 1e9, Key: "route"}
	remote := local
	remote.Store = schemas.RateLimitStoreRedis
	remote.Redis = &schemas.RedisStore{Address: addr}
	counted := &decisionsTarget{gitgate: &gitgate{bin: env.gateway, label: "gitgate redis limit", limit: &remote}, sock: filepath.Join(env.dir, "gitgate-admin.sock"), by: map[string]float64{}}
	targets := []target{
		&gitgate{bin: env.gateway, label: "gitgate no limit"},
		&gitgate{bin: env.gateway, label: "gitgate local limit", limit: &local},
		counted,
	}
	active, samples, err := interleave(ctx, cfg, env, targets)
	if err != nil {
		return "", err
	}
	med := func(name string, f func(sample) float64) float64 { return medianOf(samples[name], f) }
	rps := func(s sample) float64 { return s.wrk.RPS }
	base := med("gitgate local limit", rps)
	var b strings.Builder
	fmt.Fprintf(&b, "## Rate limit store (wrk on CPU 0, gateway + upstream + redis-server on CPU 1, %d connections, %d runs of %v, medians)\n\n", cfg.conns, cfg.runs, cfg.duration)
	fmt.Fprintf(&b, "Machine: %s\n\n", machineLine())
	b.WriteString("| target | req/s | p50 | p99 | gateway CPU µs/req | vs local req/s |\n|---|---:|---:|---:|---:|---:|\n")
	for _, t := range active {
		n := t.Name()
		r := med(n, rps)
		p50 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P50) }))
		p99 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P99) }))
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", r/base)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %.1f | %s |\n", n, r, p50.Round(time.Microsecond), p99.Round(time.Microsecond),
			med(n, func(s sample) float64 { return s.cpuPerReqUS }), ratio)
	}
	total := 0.0
	for _, n := range counted.by {
		total += n
	}
	if total > 0 {
		fmt.Fprintf(&b, "\nDecisions of the redis-limit gateway over all its runs: %.1f%% by redis, %.1f%% by its local fallback (store errors or timeouts).\n",
			100*counted.by["redis"]/total, 100*counted.by["local"]/total)
	}
	return b.String(), nil
}

// decisionsTarget is a gitgate target that, before it stops, adds up the
// rate-limit decisions by store from the gateway's metrics, so the report
// says whether Redis decided or the fallback did.
type decisionsTarget struct {
	*gitgate
	sock string
	by   map[string]float64
}

var reDecision = regexp.MustCompile(`(?m)^gitgate_policy_rate_limit_decisions_total\{policy="limit",result="\w+",store="(\w+)"\} (\S+)$`)

func (d *decisionsTarget) Stop() {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	if resp, err := c.Get("http://gateway/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range reDecision.FindAllStringSubmatch(string(body), -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			d.by[m[1]] += v
		}
	}
	d.gitgate.Stop()
}
