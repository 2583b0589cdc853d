package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// sample is one measurement of one target.
type sample struct {
	wrk         wrkResult
	cpuPerReqUS float64 // proxy CPU time per request, microseconds
}

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTick = 10 * time.Millisecond

func measure(ctx context.Context, cfg benchConfig, env benchEnv, t target) (sample, error) {
	url, err := t.Start(ctx, env.dir, env.proxyCPU, env.upstream)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", t.Name(), err)
	}
	defer t.Stop()
	headers := []string{"X-API-Key: " + benchAPIKey}
	// Warm up connection pools and caches.
	if _, out, err := runWrk(ctx, env.loadCPU, cfg.conns, time.Second, url+"/", headers...); err != nil {
		return sample{}, fmt.Errorf("%s warm-up: %w\n%s", t.Name(), err, out)
	}
	var before int64
	if p := t.Proc(); p != nil {
		before = p.cpuTicks()
	}
	r, out, err := runWrk(ctx, env.loadCPU, cfg.conns, cfg.duration, url+"/", headers...)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", t.Name(), err)
	}
	return newSample(t.Name(), r, out, t.Proc(), before), nil
}

// newSample is what one wrk run r (which printed out) measured of name,
// whose process group p used CPU ticks since before (p nil: not counted).
// Failed requests are reported, since they are cheap to serve and would
// flatter the CPU per request.
func newSample(name string, r wrkResult, out string, p *proc, before int64) sample {
	if r.Non2xx > 0 || r.SocketErrors > 0 {
		fmt.Fprintf(os.Stderr, "%s: %d non-2xx, %d socket errors\n%s\n", name, r.Non2xx, r.SocketErrors, out)
	}
	s := sample{wrk: r}
	if p != nil && r.Requests > 0 {
		s.cpuPerReqUS = float64(p.cpuTicks()-before) * float64(clockTick.Microseconds()) / float64(r.Requests)
	}
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// interleave measures the targets -only selects cfg.runs times each,
// rotating the order each run so slow phases of the host spread out, and
// returns the targets it measured, in their order, with their samples.
func interleave(ctx context.Context, cfg benchConfig, env benchEnv, targets []target) ([]target, map[string][]sample, error) {
	var active []target
	for _, t := range targets {
		if selected(cfg.only, t.Name()) {
			active = append(active, t)
		}
	}
	samples := map[string][]sample{}
	for run := range cfg.runs {
		for i := range active {
			t := active[(i+run)%len(active)]
			s, err := measure(ctx, cfg, env, t)
			if err != nil {
				return nil, nil, err
			}
			fmt.Fprintf(os.Stderr, "run %d %-22s %10.0f req/s p99 %v cpu %.1fus/req\n", run+1, t.Name(), s.wrk.RPS, s.wrk.P99, s.cpuPerReqUS)
			samples[t.Name()] = append(samples[t.Name()], s)
		}
	}
	return active, samples, nil
}

// pairedMedian is the median over runs of f(a's sample) / f(b's sample):
// each run measures both targets one after the other, so a ratio within a
// run does not see the host's slow and fast phases that medians taken
// apart from each other mix. 0 when a run lacks a sample or a value.
func pairedMedian(a, b []sample, f func(sample) float64) float64 {
	if len(a) == 0 || len(a) != len(b) {
		return 0
	}
	var rs []float64
	for i := range a {
		x, y := f(a[i]), f(b[i])
		if x <= 0 || y <= 0 {
			return 0
		}
		rs = append(rs, x/y)
	}
	return median(rs)
}

// medianOf is the median of f over samples.
func medianOf(samples []sample, f func(sample) float64) float64 {
	var xs []float64
	for _, s := range samples {
		xs = append(xs, f(s))
	}
	return median(xs)
}

func throughput(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	targets := []target{
		&direct{},
		&gitgate{bin: env.gateway, label: "gitgate"},
		&nginx{},
		&caddy{},
		&haproxy{},
		&goFloor{},
		&goFloor{duties: true},
		&gitgate{bin: env.gateway, label: "gitgate 10k routes", routes: 10000},
		&gitgate{bin: env.gateway, label: "gitgate policy chain", policies: true},
		&gitgate{bin: env.gateway, label: "gitgate net/http", http1: "net"},
		&gitgate{bin: env.gateway, label: "gitgate net/http 10k routes", routes: 10000, http1: "net"},
		&gitgate{bin: env.gateway, label: "gitgate net/http policy chain", policies: true, http1: "net"},
	}
	if cfg.baseline != "" {
		targets = append(targets[:2:2], append([]target{&gitgate{bin: cfg.baseline, label: "gitgate baseline"}}, targets[2:]...)...)
	}
	active, samples, err := interleave(ctx, cfg, env, targets)
	if err != nil {
		return "", err
	}
	med := func(name string, f func(sample) float64) float64 { return medianOf(samples[name], f) }
	rps := func(s sample) float64 { return s.wrk.RPS }
	nginxRPS := med("nginx", rps)
	nginxCPU := med("nginx", func(s sample) float64 { return s.cpuPerReqUS })
	var b strings.Builder
	fmt.Fprintf(&b, "## Proxy throughput (%s, %d connections, %d runs of %v, medians)\n\n", "wrk on CPU 0, proxy + upstream on CPU 1", cfg.conns, cfg.runs, cfg.duration)
	fmt.Fprintf(&b, "Machine: %s\n\n", machineLine())
	b.WriteString("| target | req/s | p50 | p99 | proxy CPU µs/req | vs nginx req/s | vs nginx CPU/req |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range active {
		n := t.Name()
		r := med(n, rps)
		cpu := med(n, func(s sample) float64 { return s.cpuPerReqUS })
		p50 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P50) }))
		p99 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P99) }))
		ratio, cpuRatio := "-", "-"
		if nginxRPS > 0 {
			ratio = fmt.Sprintf("%.2f", r/nginxRPS)
		}
		if nginxCPU > 0 && cpu > 0 {
			cpuRatio = fmt.Sprintf("%.2f", cpu/nginxCPU)
		}
		cpuS := "-"
		if cpu > 0 {
			cpuS = fmt.Sprintf("%.1f", cpu)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %s | %s | %s |\n", n, r, p50.Round(time.Microsecond), p99.Round(time.Microsecond), cpuS, ratio, cpuRatio)
	}
	if g, c := med("gitgate", rps), med("caddy", rps); g > 0 && c > 0 {
		fmt.Fprintf(&b, "\ngitgate / Caddy: %.2fx\n", g/c)
	}
	if g, k := med("gitgate", rps), med("gitgate 10k routes", rps); g > 0 && k > 0 {
		fmt.Fprintf(&b, "gitgate 10k routes / 1 route: %.3f (%.1f%% loss)\n", k/g, 100*(1-k/g))
	}
	if g, p := med("gitgate", rps), med("gitgate policy chain", rps); g > 0 && p > 0 {
		fmt.Fprintf(&b, "gitgate policy chain cost per request: %+.1f%% (1/req/s)\n", 100*(g/p-1))
	}
	if g, c := med("gitgate net/http", rps), med("caddy", rps); g > 0 && c > 0 {
		fmt.Fprintf(&b, "gitgate net/http / Caddy: %.2fx\n", g/c)
	}
	if g, k := med("gitgate net/http", rps), med("gitgate net/http 10k routes", rps); g > 0 && k > 0 {
		fmt.Fprintf(&b, "gitgate net/http 10k routes / 1 route: %.3f (%.1f%% loss)\n", k/g, 100*(1-k/g))
	}
	if g, p := med("gitgate net/http", rps), med("gitgate net/http policy chain", rps); g > 0 && p > 0 {
		fmt.Fprintf(&b, "gitgate net/http policy chain cost per request: %+.1f%% (1/req/s)\n", 100*(g/p-1))
	}
	b.WriteString(pairedSummary(samples, rps))
	return b.String(), nil
}

// pairedSummary reports the ratios of the throughput table as medians of
// the ratios within each run (see pairedMedian), for the pairs that ran.
func pairedSummary(samples map[string][]sample, rps func(sample) float64) string {
	cpu := func(s sample) float64 { return s.cpuPerReqUS }
	var lines []string
	add := func(format string, a, b string, f func(sample) float64, show func(float64) float64) {
		if r := pairedMedian(samples[a], samples[b], f); r > 0 {
			lines = append(lines, fmt.Sprintf(format, show(r)))
		}
	}
	same := func(r float64) float64 { return r }
	for _, g := range []string{"gitgate", "gitgate net/http"} {
		add(g+" / nginx requests/s: %.2f", g, "nginx", rps, same)
		add(g+" / nginx CPU per request: %.2f", g, "nginx", cpu, same)
		add(g+" / Caddy requests/s: %.2fx", g, "caddy", rps, same)
		add(g+" 10k routes / 1 route: %.3f", g+" 10k routes", g, rps, same)
		add(g+" policy chain cost per request: %+.1f%%", g, g+" policy chain", rps, func(r float64) float64 { return 100 * (r - 1) })
	}
	add("gitgate / go floor CPU per request: %.2f", "gitgate", "go floor (fasthttp)", cpu, same)
	add("go floor / nginx CPU per request: %.2f", "go floor (fasthttp)", "nginx", cpu, same)
	add("gitgate / go floor with duties CPU per request: %.2f", "gitgate", "go floor with duties (fasthttp)", cpu, same)
	add("go floor with duties / nginx CPU per request: %.2f", "go floor with duties (fasthttp)", "nginx", cpu, same)
	add("go floor with duties / nginx requests/s: %.2f", "go floor with duties (fasthttp)", "nginx", rps, same)
	add("gitgate / gitgate baseline requests/s: %.3f", "gitgate", "gitgate baseline", rps, same)
	add("gitgate / gitgate baseline CPU per request: %.3f", "gitgate", "gitgate baseline", cpu, same)
	add("gitgate baseline / nginx requests/s: %.2f", "gitgate baseline", "nginx", rps, same)
	add("gitgate baseline / nginx CPU per request: %.2f", "gitgate baseline", "nginx", cpu, same)
	if len(lines) == 0 {
		return ""
	}
	return "\nMedians of the ratios within each run (the host's speed varies between runs, less within one):\n\n- " + strings.Join(lines, "\n- ") + "\n"
}

// reloadUnderLoad keeps wrk busy while each target reloads cfg.reloads times,
// alternating valid and invalid configs, and counts what the client saw.
func reloadUnderLoad(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	targets := []target{&gitgate{bin: env.gateway, label: "gitgate"}, &gitgate{bin: env.gateway, label: "gitgate net/http", http1: "net"}, &nginx{}, &caddy{}}
	loadFor := time.Duration(cfg.reloads)*cfg.interval + 4*time.Second
	var b strings.Builder
	fmt.Fprintf(&b, "## Reloads under load (%d reloads alternating valid/invalid every %v, wrk %d connections, no retries)\n\n", cfg.reloads, cfg.interval, cfg.conns)
	fmt.Fprintf(&b, "Machine: %s\n\n", machineLine())
	b.WriteString("| target | reload method | requests | socket errors | of which read | non-2xx | p99 | req/s |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	methods := map[string]string{"gitgate": "PUT /v1/bundle (admin socket)", "gitgate net/http": "PUT /v1/bundle (admin socket)", "nginx": "nginx -s reload", "caddy": "POST /load"}
	for _, t := range targets {
		if !selected(cfg.only, t.Name()) {
			continue
		}
		url, err := t.Start(ctx, env.dir, env.proxyCPU, env.upstream)
		if err != nil {
			return "", fmt.Errorf("%s: %w", t.Name(), err)
		}
		type res struct {
			r   wrkResult
			out string
			err error
		}
		done := make(chan res, 1)
		go func() {
			r, out, err := runWrk(ctx, env.loadCPU, cfg.conns, loadFor, url+"/")
			done <- res{r, out, err}
		}()
		time.Sleep(time.Second)
		var reloadErr error
		for i := 1; i <= cfg.reloads && reloadErr == nil; i++ {
			reloadErr = t.Reload(ctx, i, i%2 == 1)
			time.Sleep(cfg.interval)
		}
		w := <-done
		t.Stop()
		if reloadErr != nil {
			return "", fmt.Errorf("%s reload: %w", t.Name(), reloadErr)
		}
		if w.err != nil {
			return "", fmt.Errorf("%s: %w", t.Name(), w.err)
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", t.Name(), w.out)
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %v | %.0f |\n", t.Name(), methods[t.Name()], w.r.Requests, w.r.SocketErrors, w.r.ReadErrors, w.r.Non2xx, w.r.P99.Round(time.Microsecond), w.r.RPS)
	}
	return b.String(), nil
}
