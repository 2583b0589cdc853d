package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// cacheThroughput loads gitgate with a response cache on the measured route
// and nginx with proxy_cache on the same route, beside both without a
// cache, all in one interleaved run, and reports cache-hit throughput as a
// ratio to nginx's. Before each measurement it checks that the cached
// targets answer from their caches.
func cacheThroughput(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	targets := []target{
		checked{&gitgate{bin: env.gateway, label: "gitgate cache", cache: true}, "Cache-Status", "gitgate; hit"},
		checked{&nginx{label: "nginx proxy_cache", cache: true}, "X-Cache-Status", "HIT"},
		&gitgate{bin: env.gateway, label: "gitgate"},
		&nginx{},
	}
	active, samples, err := interleave(ctx, cfg, env, targets)
	if err != nil {
		return "", err
	}
	med := func(name string, f func(sample) float64) float64 { return medianOf(samples[name], f) }
	rps := func(s sample) float64 { return s.wrk.RPS }
	cpu := func(s sample) float64 { return s.cpuPerReqUS }
	var b strings.Builder
	fmt.Fprintf(&b, "## Cache-hit throughput (wrk on CPU 0, proxy + upstream on CPU 1, %d connections, %d runs of %v, medians)\n\n", cfg.conns, cfg.runs, cfg.duration)
	fmt.Fprintf(&b, "Machine: %s; load average %s\n\n", machineLine(), loadAvg())
	b.WriteString("| target | req/s | p50 | p99 | proxy CPU µs/req |\n|---|---:|---:|---:|---:|\n")
	for _, t := range active {
		n := t.Name()
		p50 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P50) }))
		p99 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P99) }))
		cpuS := "-"
		if c := med(n, cpu); c > 0 {
			cpuS = fmt.Sprintf("%.1f", c)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %s |\n", n, med(n, rps), p50.Round(time.Microsecond), p99.Round(time.Microsecond), cpuS)
	}
	if g, x := med("gitgate cache", rps), med("nginx proxy_cache", rps); g > 0 && x > 0 {
		fmt.Fprintf(&b, "\ngitgate cache / nginx proxy_cache: %.2fx req/s", g/x)
		if gc, xc := med("gitgate cache", cpu), med("nginx proxy_cache", cpu); gc > 0 && xc > 0 {
			fmt.Fprintf(&b, ", %.2fx CPU per request", gc/xc)
		}
		b.WriteString("\n")
	}
	for _, n := range []string{"gitgate", "nginx"} {
		c := n + " cache"
		if n == "nginx" {
			c = "nginx proxy_cache"
		}
		if p, h := med(n, rps), med(c, rps); p > 0 && h > 0 {
			fmt.Fprintf(&b, "%s cached / proxied: %.2fx req/s\n", n, h/p)
		}
	}
	return b.String(), nil
}

// checked is a target whose Start also checks that a GET of "/" after the
// first is answered from its cache (header carries want).
type checked struct {
	target
	header, want string
}

func (c checked) Start(ctx context.Context, dir, cpus, upstream string) (string, error) {
	url, err := c.target.Start(ctx, dir, cpus, upstream)
	if err != nil {
		return url, err
	}
	var got string
	for i := range 5 { // nginx may answer MISS while its cache loader starts
		if i > 1 {
			time.Sleep(200 * time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return url, fmt.Errorf("%s: checking the cache: %w", c.Name(), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got = resp.Header.Get(c.header); i > 0 && strings.HasPrefix(got, c.want) {
			return url, nil
		}
	}
	if !strings.HasPrefix(got, c.want) {
		return url, fmt.Errorf("%s: the second GET has %s %q, want a hit (%s)", c.Name(), c.header, got, c.want)
	}
	return url, nil
}
