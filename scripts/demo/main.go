// Command demo runs gitgate end to end on this machine with nothing but Go
// and git: it creates a config repository, builds and starts the real
// gateway and agent binaries and two demo upstreams, then walks through a
// canary weight change delivered by a signed webhook, an invalid commit that
// is rejected while the old config keeps serving, and a rollback that pins.
// It stops everything it started and exits 0.
//
//	go run ./scripts/demo          # scripted walk-through, then exit
//	go run ./scripts/demo -keep    # leave everything running until Ctrl-C
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const secret = "demo-webhook-secret"

// gwArgs and agentArgs are the flags, reused when the demo restarts them.
var gwArgs, agentArgs []string

func main() {
	keep := flag.Bool("keep", false, "keep the gateway, agent and upstreams running until Ctrl-C")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long (building included)")
	measure := flag.Int("measure", 0, "after the walk-through, time N commits from webhook to first request served (p50/p95) and report the agent's idle RSS")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d := &demo{}
	err := d.run(ctx, *keep, *measure)
	d.cleanup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		if d.dir != "" {
			fmt.Fprintf(os.Stderr, "logs: %s/gateway.log %s/agent.log\n", d.dir, d.dir)
		}
		os.Exit(1)
	}
}

type demo struct {
	dir       string
	repo      string
	bin       string
	gwAddr    string
	hookAddr  string
	ctlSock   string
	procs     []*exec.Cmd
	upstreams []*httptest.Server
	keepDir   bool
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
func info(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func (d *demo) run(ctx context.Context, keep bool, measure int) error {
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("git is not installed")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if d.dir, err = os.MkdirTemp("", "gitgate-demo-"); err != nil {
		return err
	}
	d.bin = filepath.Join(d.dir, "bin")

	step("Building the gateway and agent binaries")
	for _, name := range []string{"gateway", "agent"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(d.bin, name), "./"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./%s: %v\n%s", name, err, out)
		}
		info("built %s", filepath.Join(d.bin, name))
	}

	step("Starting two demo upstreams")
	for _, label := range []string{"v1", "v2"} {
		label := label
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", label)
		}))
		d.upstreams = append(d.upstreams, srv)
		info("%s at %s", label, srv.URL)
	}

	step("Creating a config repository")
	d.repo = filepath.Join(d.dir, "config-repo")
	if err := os.MkdirAll(d.repo, 0o755); err != nil {
		return err
	}
	if err := d.git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	if err := d.write("upstreams.yaml", fmt.Sprintf("upstreams:\n  stable:\n    targets: [%q]\n  canary:\n    targets: [%q]\n", d.upstreams[0].URL, d.upstreams[1].URL)); err != nil {
		return err
	}
	if err := d.write("routes.yaml", routes(100, 0, "weight")); err != nil {
		return err
	}
	first, err := d.commit("shop: all traffic to stable")
	if err != nil {
		return err
	}
	info("%s  commit %s: shop -> stable 100%%", d.repo, first[:12])

	step("Starting the gateway and the agent")
	if d.gwAddr, err = freeAddr(); err != nil {
		return err
	}
	if d.hookAddr, err = freeAddr(); err != nil {
		return err
	}
	gwSock := filepath.Join(d.dir, "gateway.sock")
	d.ctlSock = filepath.Join(d.dir, "agent.sock")
	secretFile := filepath.Join(d.dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	gwArgs = []string{"--listen", d.gwAddr, "--admin-socket", gwSock, "--state-dir", filepath.Join(d.dir, "gateway-state")}
	if err := d.start(ctx, "gateway", gwArgs...); err != nil {
		return err
	}
	if err := waitFor(ctx, "the gateway's admin socket", func() bool { _, err := os.Stat(gwSock); return err == nil }); err != nil {
		return err
	}
	agentArgs = []string{"run", "--repo", d.repo, "--branch", "main", "--gateway-socket", gwSock,
		"--state-dir", filepath.Join(d.dir, "agent-state"), "--control-socket", d.ctlSock,
		"--webhook-addr", d.hookAddr, "--webhook-secret-file", secretFile, "--poll-interval", "1h"}
	if err := d.start(ctx, "agent", agentArgs...); err != nil {
		return err
	}
	info("gateway  http://%s  (admin socket %s)", d.gwAddr, gwSock)
	info("agent    webhook http://%s/webhooks/github, control socket %s", d.hookAddr, d.ctlSock)
	if err := waitFor(ctx, "the first config to be served", func() bool { return d.get() == "hello from v1" }); err != nil {
		return err
	}
	info("curl http://%s/  ->  %s", d.gwAddr, d.get())

	step("Committing a canary: 50%% of shop traffic to v2, then a signed push webhook")
	if err := d.write("routes.yaml", routes(50, 50, "weight")); err != nil {
		return err
	}
	canary, err := d.commit("shop: canary 50/50")
	if err != nil {
		return err
	}
	sent := time.Now()
	if err := d.webhook(ctx); err != nil {
		return err
	}
	if err := waitFor(ctx, "v2 to receive traffic", func() bool { return d.get() == "hello from v2" }); err != nil {
		return err
	}
	info("commit %s: webhook to first request served by v2 took %s", canary[:12], time.Since(sent).Round(time.Millisecond))
	if err := d.expect("the canary", 20, true); err != nil {
		return err
	}

	step("Committing an invalid change (a typo: wieght) and pushing it")
	if err := d.write("routes.yaml", routes(50, 50, "wieght")); err != nil {
		return err
	}
	bad, err := d.commit("shop: typo")
	if err != nil {
		return err
	}
	if err := d.webhook(ctx); err != nil {
		return err
	}
	var last []struct {
		SHA         string `json:"sha"`
		Result      string `json:"result"`
		Diagnostics []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"diagnostics"`
	}
	if err := waitFor(ctx, "the agent to reject the commit", func() bool {
		out, err := d.agent(ctx, "history", "-n", "1", "--json")
		return err == nil && json.Unmarshal([]byte(out), &last) == nil && len(last) == 1 && last[0].SHA == bad
	}); err != nil {
		return err
	}
	info("commit %s: %s", bad[:12], last[0].Result)
	for _, dg := range last[0].Diagnostics {
		info("  %s:%d:%d: %s: %s", dg.File, dg.Line, dg.Column, dg.Path, dg.Message)
	}
	if err := d.expect("still the canary", 20, true); err != nil {
		return err
	}

	step("agent rollback  (no sha: back to the previously applied commit, pinned)")
	out, err := d.agent(ctx, "rollback", "--reason", "canary looked bad")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	if err := d.expect("rolled back: stable only", 20, false); err != nil {
		return err
	}

	step("Fix forward: a new good commit (90/10) lifts the pin")
	if err := d.write("routes.yaml", routes(90, 10, "weight")); err != nil {
		return err
	}
	fix, err := d.commit("shop: canary 90/10")
	if err != nil {
		return err
	}
	if err := d.webhook(ctx); err != nil {
		return err
	}
	if err := waitFor(ctx, "the fix to be applied", func() bool {
		out, err := d.agent(ctx, "status", "--json")
		var st struct {
			Mode        string `json:"mode"`
			LastApplied string `json:"lastApplied"`
		}
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Mode == "tracking" && st.LastApplied == fix
	}); err != nil {
		return err
	}
	info("commit %s applied, tracking main again", fix[:12])
	if err := d.expect("90/10", 50, true); err != nil {
		return err
	}

	step("kill -9 the gateway, restart it: it serves its last-known-good before the agent talks to it")
	pid, err := d.kill9("gateway")
	if err != nil {
		return err
	}
	info("killed gateway (pid %d); curl -> %q", pid, d.get())
	if err := d.start(ctx, "gateway", gwArgs...); err != nil {
		return err
	}
	if err := waitFor(ctx, "the restarted gateway to serve", func() bool { return d.get() != "" }); err != nil {
		return err
	}
	if err := d.expect("restarted from last-known-good", 20, true); err != nil {
		return err
	}
	if _, err = d.agent(ctx, "sync"); err != nil {
		return err
	}
	info("agent sync: the agent re-checks the gateway's digest and converges")

	step("kill -9 the agent, commit while it is down, restart it: it picks up from its state dir")
	if pid, err = d.kill9("agent"); err != nil {
		return err
	}
	info("killed agent (pid %d)", pid)
	if err := d.write("routes.yaml", routes(80, 20, "weight")); err != nil {
		return err
	}
	next, err := d.commit("shop: canary 80/20")
	if err != nil {
		return err
	}
	if err := d.start(ctx, "agent", agentArgs...); err != nil {
		return err
	}
	if err := waitFor(ctx, "the restarted agent to apply "+next[:12], func() bool {
		out, err := d.agent(ctx, "status", "--json")
		var st struct {
			LastApplied    string `json:"lastApplied"`
			GatewayVersion string `json:"gatewayVersion"`
		}
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.LastApplied == next && st.GatewayVersion == next
	}); err != nil {
		return err
	}
	info("commit %s applied by the restarted agent", next[:12])
	if err := d.expect("80/20", 50, true); err != nil {
		return err
	}

	step("agent status")
	out, err = d.agent(ctx, "status")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("agent history")
	out, err = d.agent(ctx, "history")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	if measure > 0 {
		if err := d.measure(ctx, measure); err != nil {
			return err
		}
	}

	if keep {
		d.keepDir = true
		step("Everything keeps running; Ctrl-C stops it. Try:")
		info("curl http://%s/", d.gwAddr)
		info("%s/agent status --control-socket %s", d.bin, d.ctlSock)
		info("edit %s/routes.yaml; git -C %s commit -am 'change'; %s/agent sync --control-socket %s", d.repo, d.repo, d.bin, d.ctlSock)
		info("%s/agent rollback <sha-prefix> --control-socket %s", d.bin, d.ctlSock)
		info("%s/agent resume --control-socket %s", d.bin, d.ctlSock)
		<-ctx.Done()
		return nil
	}
	step("Done: stopping everything the demo started")
	return nil
}

// measure commits n changes that flip the shop route between the two
// upstreams and times each from the webhook to the first request answered
// by the new upstream.
func (d *demo) measure(ctx context.Context, n int) error {
	step("Measuring webhook to first request served by the new config over %d commits", n)
	var lat []time.Duration
	for i := range n {
		to, want := 100, "hello from v1"
		if i%2 == 0 {
			to, want = 0, "hello from v2"
		}
		content := routes(to, 100-to, "weight")
		if to == 0 {
			content = "routes:\n  shop:\n    match:\n      path: /\n      pathType: prefix\n    backends:\n      - upstream: canary\n        weight: 100\n"
		}
		if err := d.write("routes.yaml", content); err != nil {
			return err
		}
		if _, err := d.commit(fmt.Sprintf("measure %d", i)); err != nil {
			return err
		}
		start := time.Now()
		if err := d.webhookQuiet(ctx); err != nil {
			return err
		}
		if err := waitFor(ctx, "the new config", func() bool { return d.get() == want }); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	info("webhook -> first request served: p50 %s  p95 %s  max %s  (n=%d)", pct(0.50).Round(time.Millisecond), pct(0.95).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), n)
	time.Sleep(2 * time.Second)
	for _, p := range d.procs {
		if rss, err := vmRSS(p.Process.Pid); err == nil {
			info("%s RSS after the run: %s", filepath.Base(p.Path), rss)
		}
	}
	return nil
}

func vmRSS(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no VmRSS")
}

// routes renders the shop route with stable/canary weights; key lets the
// demo commit a typo.
func routes(stable, canary int, key string) string {
	var b strings.Builder
	b.WriteString("routes:\n  shop:\n    match:\n      path: /\n      pathType: prefix\n    backends:\n")
	fmt.Fprintf(&b, "      - upstream: stable\n        %s: %d\n", key, stable)
	if canary > 0 {
		fmt.Fprintf(&b, "      - upstream: canary\n        %s: %d\n", key, canary)
	}
	return b.String()
}

func (d *demo) write(name, content string) error {
	return os.WriteFile(filepath.Join(d.repo, name), []byte(content), 0o644)
}

func (d *demo) git(args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = d.repo
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null",
		"GIT_AUTHOR_NAME=Demo Operator", "GIT_AUTHOR_EMAIL=ops@example.com",
		"GIT_COMMITTER_NAME=Demo Operator", "GIT_COMMITTER_EMAIL=ops@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (d *demo) commit(msg string) (string, error) {
	if err := d.git("add", "-A"); err != nil {
		return "", err
	}
	if err := d.git("commit", "-q", "-m", msg); err != nil {
		return "", err
	}
	out, err := exec.Command("git", "-C", d.repo, "rev-parse", "HEAD").Output()
	return strings.TrimSpace(string(out)), err
}

// start runs a binary from d.bin with its output in <dir>/<name>.log.
func (d *demo) start(ctx context.Context, name string, args ...string) error {
	logf, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(d.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	d.procs = append(d.procs, cmd)
	info("started %s (pid %d)", name, cmd.Process.Pid)
	return nil
}

// kill9 sends SIGKILL to the running process started from binary name,
// reaps it and forgets it. It returns the pid.
func (d *demo) kill9(name string) (int, error) {
	for i, p := range d.procs {
		if filepath.Base(p.Path) != name {
			continue
		}
		if err := p.Process.Kill(); err != nil {
			return 0, fmt.Errorf("killing %s: %w", name, err)
		}
		_ = p.Wait()
		d.procs = append(d.procs[:i], d.procs[i+1:]...)
		return p.Process.Pid, nil
	}
	return 0, fmt.Errorf("no running %s", name)
}

// agent runs an agent CLI command against the running agent.
func (d *demo) agent(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--control-socket", d.ctlSock)
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "agent"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("agent %s: %v: %s", args[0], err, errb.String())
	}
	return out.String(), nil
}

// webhook sends a signed GitHub push delivery for main to the agent.
func (d *demo) webhook(ctx context.Context) error {
	code, err := d.sendWebhook(ctx)
	if err != nil {
		return err
	}
	info("POST /webhooks/github (signed push to main) -> %d", code)
	return nil
}

func (d *demo) webhookQuiet(ctx context.Context) error {
	_, err := d.sendWebhook(ctx)
	return err
}

func (d *demo) sendWebhook(ctx context.Context) (int, error) {
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"demo/config"}}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.hookAddr+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("demo-%d", time.Now().UnixNano()))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sending the webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

var httpc = &http.Client{Timeout: 2 * time.Second}

// get returns the trimmed body of GET / on the gateway, "" on error.
func (d *demo) get() string {
	resp, err := httpc.Get("http://" + d.gwAddr + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// expect sends n requests, prints which upstream answered, and fails on
// any failed request, or on v2 answers when v2 must get no traffic.
func (d *demo) expect(what string, n int, v2Allowed bool) error {
	counts := map[string]int{}
	for range n {
		body := d.get()
		if body == "" {
			body = "error"
		}
		counts[strings.TrimPrefix(body, "hello from ")]++
	}
	info("%s, %d requests: v1=%d v2=%d failed=%d", what, n, counts["v1"], counts["v2"], counts["error"])
	if counts["error"] > 0 || counts["v1"]+counts["v2"] != n {
		return fmt.Errorf("%s: %d of %d requests failed", what, n-counts["v1"]-counts["v2"], n)
	}
	if !v2Allowed && counts["v2"] > 0 {
		return fmt.Errorf("%s: v2 answered %d requests", what, counts["v2"])
	}
	return nil
}

// cleanup stops every process the demo started (by pid: SIGTERM, then kill
// after 5s), closes the upstreams and removes the temp dir.
func (d *demo) cleanup() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for _, s := range d.upstreams {
		s.Close()
	}
	if d.dir != "" && !d.keepDir {
		os.RemoveAll(d.dir)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the demo from inside the gitgate module: go run ./scripts/demo")
	}
	return filepath.Dir(mod), nil
}
