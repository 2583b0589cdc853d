package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// correlationTarget is the real gateway loaded with its own request
// headers: the correlation variants differ in what the client sends and in
// the gateway's span export flags.
type correlationTarget struct {
	*gitgate
	headers []string
}

// correlationBench measures the cost of request correlation in one run of
// interleaved measurements: the gateway generating X-Request-Id for bare
// requests, the same with a valid traceparent and tracestate to check and
// pass on (span export off, the default: the cost every gateway pays), and
// with span export on (--otlp-endpoint at an OTLP/HTTP sink in this
// process) at sampling 0 (spans started, none exported) and 1 (every
// request exported).
func correlationBench(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	var received atomic.Int64
	sink := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = sink.Serve(ln) }()
	defer sink.Close()
	otlp := "http://" + ln.Addr().String()
	const tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	targets := []*correlationTarget{
		{gitgate: &gitgate{bin: env.gateway, label: "gitgate"}},
		{gitgate: &gitgate{bin: env.gateway, label: "gitgate traceparent"}, headers: []string{tp, "tracestate: vendor=x"}},
		{gitgate: &gitgate{bin: env.gateway, label: "gitgate export sampling=0", extraArgs: []string{"--otlp-endpoint", otlp, "--trace-sampling", "0"}}},
		{gitgate: &gitgate{bin: env.gateway, label: "gitgate export sampling=1", extraArgs: []string{"--otlp-endpoint", otlp, "--trace-sampling", "1"}}},
	}
	var active []*correlationTarget
	for _, t := range targets {
		if selected(cfg.only, t.Name()) {
			active = append(active, t)
		}
	}
	samples := map[string][]sample{}
	for run := range cfg.runs {
		for i := range active {
			t := active[(i+run)%len(active)]
			s, err := measureCorrelation(ctx, cfg, env, t)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(os.Stderr, "run %d %-26s %10.0f req/s p99 %v cpu %.1fus/req\n", run+1, t.Name(), s.wrk.RPS, s.wrk.P99, s.cpuPerReqUS)
			samples[t.Name()] = append(samples[t.Name()], s)
		}
	}
	med := func(name string, f func(sample) float64) float64 { return medianOf(samples[name], f) }
	rps := func(s sample) float64 { return s.wrk.RPS }
	cpu := func(s sample) float64 { return s.cpuPerReqUS }
	baseRPS, baseCPU := med("gitgate", rps), med("gitgate", cpu)
	var b strings.Builder
	fmt.Fprintf(&b, "## Request correlation (%s, %d connections, %d runs of %v, medians)\n\n", "wrk on CPU 0, gateway + upstream on CPU 1", cfg.conns, cfg.runs, cfg.duration)
	fmt.Fprintf(&b, "Machine: %s\n\n", machineLine())
	b.WriteString("| target | req/s | p50 | p99 | gateway CPU µs/req | vs gitgate req/s | vs gitgate CPU/req |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range active {
		n := t.Name()
		r, c := med(n, rps), med(n, cpu)
		p50 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P50) }))
		p99 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P99) }))
		ratio, cpuRatio := "-", "-"
		if baseRPS > 0 {
			ratio = fmt.Sprintf("%.3f", r/baseRPS)
		}
		if baseCPU > 0 && c > 0 {
			cpuRatio = fmt.Sprintf("%.3f", c/baseCPU)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %.1f | %s | %s |\n", n, r, p50.Round(time.Microsecond), p99.Round(time.Microsecond), c, ratio, cpuRatio)
	}
	fmt.Fprintf(&b, "\nEvery row generates an X-Request-Id (it cannot be turned off); \"traceparent\" adds the W3C check and pass-through with export off. The OTLP sink received %d bytes.\n", received.Load())
	return b.String(), nil
}

// measureCorrelation is measure with the target's own request headers.
func measureCorrelation(ctx context.Context, cfg benchConfig, env benchEnv, t *correlationTarget) (sample, error) {
	url, err := t.Start(ctx, env.dir, env.proxyCPU, env.upstream)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", t.Name(), err)
	}
	defer t.Stop()
	if _, out, err := runWrk(ctx, env.loadCPU, cfg.conns, time.Second, url+"/", t.headers...); err != nil {
		return sample{}, fmt.Errorf("%s warm-up: %w\n%s", t.Name(), err, out)
	}
	before := t.Proc().cpuTicks()
	r, out, err := runWrk(ctx, env.loadCPU, cfg.conns, cfg.duration, url+"/", t.headers...)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", t.Name(), err)
	}
	return newSample(t.Name(), r, out, t.Proc(), before), nil
}
