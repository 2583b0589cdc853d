// Command bench measures the gitgate gateway against nginx, Caddy and
// HAProxy on loopback, in one run, with wrk as the load generator.
//
//	go run ./scripts/bench                 # throughput table (1 route, 10k routes, policy chain)
//	go run ./scripts/bench -mode tls       # TLS listener throughput, gitgate and nginx on one certificate
//	go run ./scripts/bench -mode cache     # cache-hit throughput, gitgate's response cache and nginx's proxy_cache
//	go run ./scripts/bench -mode reload    # failed requests while reloading under load
//	go run ./scripts/bench -mode sync      # commit + signed webhook -> first request served
//	go run ./scripts/bench -mode fleet     # 20 replicas: push-to-serve, rollback-to-served, idle Git requests
//	go run ./scripts/bench -mode autorollback  # bad commit applied -> previous one served; false rollbacks
//	go run ./scripts/bench -mode ratelimit # rate limit kept in Redis vs in memory vs none
//	go run ./scripts/bench -mode correlation   # request ids + traceparent, span export off and on
//
// It installs missing peers from Debian's packages (apt-get), pins wrk to
// one CPU and each proxy with the upstream to the other, interleaves the
// targets over several runs, and reports medians and ratios to nginx from
// the same run. Every process it starts, it stops by its process group.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		mode       = flag.String("mode", "throughput", "throughput | tls (gitgate and nginx listening with TLS on one self-signed ECDSA P-256 certificate, beside plain) | cache (cache-hit throughput: gitgate's response cache against nginx's proxy_cache on the same route, beside both uncached) | reload | sync (push-to-serve latency over 50 commits per run, and idle RSS) | autorollback (detection time of a bad commit at 200 req/s per run, false rollbacks over 30 good commits in the first run) | fleet (push-to-serve and rollback-to-served over -replicas pairs, -runs rounds each, and Git requests while idle) | ratelimit (one route behind a rate limit in memory and in a loopback redis-server, and without one) | correlation (request ids and traceparent with span export off, and export on at sampling 0 and 1) | ab (gitgate and a -baseline build loaded at the same time, CPU per request compared)")
		duration   = flag.Duration("duration", 10*time.Second, "load time per measurement")
		runs       = flag.Int("runs", 3, "interleaved runs per target (medians are reported)")
		conns      = flag.Int("conns", 64, "wrk connections")
		reloads    = flag.Int("reloads", 200, "reloads in -mode reload, alternating valid and invalid")
		interval   = flag.Duration("reload-interval", 100*time.Millisecond, "pace of reloads")
		goodCount  = flag.Int("good-commits", 30, "good commits baked for false rollbacks in -mode autorollback")
		only       = flag.String("only", "", "comma-separated target names to run (default all)")
		out        = flag.String("out", "", "also write the markdown table to this file")
		noInstall  = flag.Bool("no-install", false, "do not apt-get install missing peers")
		replicas   = flag.Int("replicas", 20, "agent+gateway pairs in -mode fleet")
		idle       = flag.Duration("idle", time.Minute, "idle window over which -mode fleet counts Git requests")
		idlePoll   = flag.Duration("idle-poll", 5*time.Second, "agents' --poll-interval during -mode fleet's idle windows")
		upstream   = flag.String("upstream", "", "internal: serve as the benchmark upstream on this address")
		floorAddr  = flag.String("floor", "", "internal: serve the go floor proxy (goFloor) on this address")
		floorUp    = flag.String("floor-upstream", "", "internal: the go floor proxy's upstream address")
		floorDuty  = flag.Bool("floor-duties", false, "internal: the go floor proxy does gitgate's per-request duties (floorDuties)")
		gatewayBin = flag.String("gateway", "", "a gateway binary to measure instead of building ./gateway")
		abConfig   = flag.String("config", "bare", "-mode ab: what gitgate serves: bare | chain (API key, rate limit, header transforms) | 10k-routes (the bare route among 10,000) | tls (the bare route on a TLS listener)")
		abBaseCfg  = flag.String("baseline-config", "", "-mode ab: the route the baseline serves, as -config (default: the same); with a different one, -baseline may be the same binary, and the ratio is the cost of the difference")
		baseline   = flag.String("baseline", "", "a gateway binary built from another revision (go build -o PATH ./gateway there): -mode throughput runs it too, as \"gitgate baseline\", interleaved with the others, and reports the paired ratios to it; in -mode ab, \"nginx\" loads nginx beside gitgate instead, \"floor\" a minimal fasthttp proxy (the go floor), and \"floor-duties\" that proxy doing gitgate's per-request duties natively")
	)
	flag.Parse()
	if *upstream != "" {
		serveUpstream(*upstream)
		return
	}
	if *floorAddr != "" {
		serveFloor(*floorAddr, *floorUp, *floorDuty)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := benchConfig{mode: *mode, duration: *duration, runs: *runs, conns: *conns, reloads: *reloads, interval: *interval, only: *only, install: !*noInstall,
		replicas: max(*replicas, 2), idle: *idle, idlePoll: *idlePoll, goodCommits: *goodCount, baseline: *baseline, gateway: *gatewayBin, abConfig: *abConfig, abBaseCfg: *abBaseCfg}
	report, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

type benchConfig struct {
	mode        string
	baseline    string // another build of the gateway, for -mode throughput
	gateway     string // the gateway binary; empty: built from ./gateway
	abConfig    string // -mode ab: gitgate's route (abConfigs)
	abBaseCfg   string // -mode ab: the baseline's; empty: abConfig
	duration    time.Duration
	runs, conns int
	reloads     int
	interval    time.Duration
	only        string
	install     bool
	replicas    int           // -mode fleet
	idle        time.Duration // -mode fleet: idle window
	idlePoll    time.Duration // -mode fleet: poll interval while idle
	goodCommits int
}

// serveUpstream is the origin every proxy forwards to: a small fixed body.
func serveUpstream(addr string) {
	body := []byte("hello from the bench upstream\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func ensureTools(install bool, mode, baseline string) error {
	need := map[string]string{"wrk": "wrk", "nginx": "nginx", "caddy": "caddy", "haproxy": "haproxy", "taskset": "util-linux"}
	if mode == "tls" || mode == "cache" { // nginx is the only peer
		delete(need, "caddy")
		delete(need, "haproxy")
	}
	if mode == "ratelimit" { // redis-server is the only peer
		need = map[string]string{"wrk": "wrk", "taskset": "util-linux", "redis-server": "redis-server"}
	}
	if mode == "correlation" || mode == "ab" { // gitgate only, or against nginx
		if mode != "ab" || baseline != "nginx" {
			delete(need, "nginx")
		}
		delete(need, "caddy")
		delete(need, "haproxy")
	}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return fmt.Errorf("missing tools (packages %s); run without -no-install to apt-get them", strings.Join(missing, " "))
	}
	sort.Strings(missing)
	fmt.Fprintf(os.Stderr, "installing %s from Debian's packages\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"apt-get", "update", "-qq"}, append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// cpus splits the machine: wrk on CPU 0, proxy and upstream on CPU 1.
func cpus() (load, proxy string) {
	if runtime.NumCPU() < 2 {
		return "", ""
	}
	return "0", "1"
}

func run(ctx context.Context, cfg benchConfig) (string, error) {
	dir, err := os.MkdirTemp("", "gitgate-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if cfg.mode == "autorollback" { // no peer, no wrk, its own backends
		return autoRollbackBench(ctx, cfg, benchEnv{dir: dir})
	}
	if cfg.mode != "fleet" { // -mode fleet needs only git
		if err := ensureTools(cfg.install, cfg.mode, cfg.baseline); err != nil {
			return "", err
		}
	}

	gw := cfg.gateway
	if gw == "" {
		gw = filepath.Join(dir, "gateway")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", gw, "./gateway").CombinedOutput(); err != nil {
			return "", fmt.Errorf("building the gateway: %w: %s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	loadCPU, proxyCPU := cpus()
	if cfg.mode == "fleet" { // 40 processes: let the kernel spread them
		loadCPU, proxyCPU = "", ""
	}
	upPort, err := freePort()
	if err != nil {
		return "", err
	}
	upAddr := fmt.Sprintf("127.0.0.1:%d", upPort)
	up, err := startProc(dir, "upstream", proxyCPU, nil, self, "-upstream", upAddr)
	if err != nil {
		return "", err
	}
	defer up.stop()
	if err := up.waitListening(ctx, upAddr); err != nil {
		return "", fmt.Errorf("upstream did not start: %w", err)
	}
	env := benchEnv{dir: dir, gateway: gw, upstream: upAddr, loadCPU: loadCPU, proxyCPU: proxyCPU}
	switch cfg.mode {
	case "throughput":
		return throughput(ctx, cfg, env)
	case "ab":
		return abCompare(ctx, cfg, env)
	case "tls":
		return tlsThroughput(ctx, cfg, env)
	case "cache":
		return cacheThroughput(ctx, cfg, env)
	case "reload":
		return reloadUnderLoad(ctx, cfg, env)
	case "sync":
		return pushToServe(ctx, cfg, env)
	case "fleet":
		return fleetBench(ctx, cfg, env)
	case "ratelimit":
		return rateLimitBench(ctx, cfg, env)
	case "correlation":
		return correlationBench(ctx, cfg, env)
	}
	return "", fmt.Errorf("unknown -mode %q", cfg.mode)
}

type benchEnv struct {
	dir, gateway, upstream string
	loadCPU, proxyCPU      string
}

func selected(only, name string) bool {
	if only == "" {
		return true
	}
	for _, n := range strings.Split(only, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func machineLine() string {
	host, _ := os.Hostname()
	ver := func(args ...string) string {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput() // wrk -v exits 1
		if len(out) == 0 {
			return args[0] + " ?"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("%s, %d CPUs, %s; %s; %s; %s; %s; %s", host, runtime.NumCPU(), runtime.Version(),
		ver("nginx", "-v"), ver("caddy", "version"), ver("haproxy", "-v"), ver("wrk", "--version"), time.Now().UTC().Format(time.RFC3339))
}
