package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// abCompare loads the gateway and a baseline build of it at the same time,
// both pinned to the proxy CPU, each with half of the connections, and
// compares their CPU per request over the same window: whatever the host's
// speed does then, both builds see it, which runs one after the other do
// not. It reports the median over runs of the ratio gitgate / baseline.
func abCompare(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	if cfg.baseline == "" {
		return "", errors.New("-mode ab needs -baseline: a gateway binary built from another revision, nginx or floor")
	}
	baseCfg := cfg.abBaseCfg
	if baseCfg == "" {
		baseCfg = cfg.abConfig
	}
	// One certificate, written once, for whichever side listens with TLS.
	var cert, key string
	if cfg.abConfig == "tls" || baseCfg == "tls" {
		var err error
		if cert, key, err = writeCert(env.dir); err != nil {
			return "", err
		}
	}
	g := &gitgate{bin: env.gateway, label: "gitgate"}
	if err := g.useConfig(cfg.abConfig, cert, key); err != nil {
		return "", err
	}
	var base target
	against := "a baseline build"
	if cfg.baseline == "nginx" {
		// nginx serves the same route on the same upstream: its CPU per
		// request over the same window, immune to the host's drift.
		n := &nginx{label: "nginx"}
		switch baseCfg {
		case "bare":
		case "tls":
			n.cert, n.key = cert, key
		default:
			return "", fmt.Errorf("-baseline nginx serves -baseline-config bare or tls, not %q", baseCfg)
		}
		base, against = n, "nginx"
	} else if cfg.baseline == "floor" || cfg.baseline == "floor-duties" {
		if baseCfg != "bare" {
			return "", fmt.Errorf("-baseline %s serves -baseline-config bare only, not %q", cfg.baseline, baseCfg)
		}
		f := &goFloor{duties: cfg.baseline == "floor-duties"}
		base, against = f, "the "+f.Name()
	} else {
		bg := &gitgate{bin: cfg.baseline, label: "gitgate baseline"}
		if err := bg.useConfig(baseCfg, cert, key); err != nil {
			return "", err
		}
		base = bg
	}
	builds := []target{g, base}
	var ratios, rpsRatios []float64
	var b strings.Builder
	route := "both on the " + cfg.abConfig + " route"
	if baseCfg != cfg.abConfig {
		route = "gitgate on the " + cfg.abConfig + " route, the baseline on the " + baseCfg + " one"
	}
	fmt.Fprintf(&b, "## gitgate against %s, loaded at the same time (%s; %d runs of %v, %d connections each, both on CPU 1)\n\n", against, route, cfg.runs, cfg.duration, cfg.conns/2)
	fmt.Fprintf(&b, "Machine: %s\n\n| run | gitgate req/s | baseline req/s | gitgate CPU µs/req | baseline CPU µs/req | CPU/req ratio |\n|---|---:|---:|---:|---:|---:|\n", machineLine())
	for run := range cfg.runs {
		s, err := abRun(ctx, cfg, env, builds)
		if err != nil {
			return "", err
		}
		r := s[0].cpuPerReqUS / s[1].cpuPerReqUS
		ratios = append(ratios, r)
		rpsRatios = append(rpsRatios, s[0].wrk.RPS/s[1].wrk.RPS)
		fmt.Fprintf(os.Stderr, "run %d gitgate %.0f req/s %.1fus/req, baseline %.0f req/s %.1fus/req, ratio %.3f\n", run+1, s[0].wrk.RPS, s[0].cpuPerReqUS, s[1].wrk.RPS, s[1].cpuPerReqUS, r)
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.1f | %.1f | %.3f |\n", run+1, s[0].wrk.RPS, s[1].wrk.RPS, s[0].cpuPerReqUS, s[1].cpuPerReqUS, r)
	}
	fmt.Fprintf(&b, "\ngitgate / %s CPU per request, median: %.3f; requests/s, median: %.3f\n", base.Name(), median(ratios), median(rpsRatios))
	return b.String(), nil
}

// useConfig sets what g serves in -mode ab: "bare", "chain",
// "10k-routes", or "tls" (the bare route on a TLS listener with the
// certificate cert and key, as -mode tls writes them).
func (g *gitgate) useConfig(name, cert, key string) error {
	switch name {
	case "bare":
	case "chain":
		g.policies = true
	case "10k-routes":
		g.routes = 10000
	case "tls":
		g.tlsCert, g.tlsKey = cert, key
	default:
		return fmt.Errorf("-config %q: want bare, chain, 10k-routes or tls", name)
	}
	return nil
}

// abRun starts both builds, warms them, and loads them at once.
func abRun(ctx context.Context, cfg benchConfig, env benchEnv, builds []target) ([]sample, error) {
	urls := make([]string, len(builds))
	for i, g := range builds {
		dir := filepath.Join(env.dir, fmt.Sprintf("ab%d", i)) // a socket and a state dir each
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		url, err := g.Start(ctx, dir, env.proxyCPU, env.upstream)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name(), err)
		}
		defer g.Stop()
		urls[i] = url
	}
	load := func(d time.Duration) ([]sample, error) {
		out := make([]sample, len(builds))
		logs := make([]string, len(builds))
		errs := make([]error, len(builds))
		before := make([]int64, len(builds))
		for i, g := range builds {
			before[i] = g.Proc().cpuTicks()
		}
		var wg sync.WaitGroup
		for i := range builds {
			wg.Go(func() {
				var headers []string
				if g, ok := builds[i].(*gitgate); ok && g.policies {
					headers = append(headers, "X-API-Key: "+benchAPIKey)
				}
				r, log, err := runWrk(ctx, env.loadCPU, cfg.conns/2, d, urls[i]+"/", headers...)
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w\n%s", builds[i].Name(), err, log)
					return
				}
				out[i].wrk, logs[i] = r, log
			})
		}
		wg.Wait()
		for i, g := range builds {
			out[i] = newSample(g.Name(), out[i].wrk, logs[i], g.Proc(), before[i])
		}
		return out, errors.Join(errs...)
	}
	if _, err := load(time.Second); err != nil { // warm-up
		return nil, err
	}
	return load(cfg.duration)
}
