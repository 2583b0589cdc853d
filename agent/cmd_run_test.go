package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/ghreport"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/statelock"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/agent/internal/webhook"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

func TestParseRunConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("agent.yaml", "repo: https://github.com/acme/config.git\nbranch: prod\ngatewaySocket: /run/gw.sock\nstateDir: /var/lib/agent\npollInterval: 10s\n")
	typo := write("typo.yaml", "repo: x\nbranchh: prod\n")
	evalFile := write("eval.yaml", "repo: x\ngatewaySocket: /run/gw.sock\nstateDir: /var/lib/agent\nevalTimeout: 5s\nevalMemory: 2GiB\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c runConfig)
	}{
		{name: "file", args: []string{"--config", good}, check: func(t *testing.T, c runConfig) {
			if c.Branch != "prod" || c.PollInterval != "10s" || c.HealInterval != "5s" || c.ControlSocket != "/var/lib/agent/agent.sock" || c.KeepBundles != 100 {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "flags win over the file", args: []string{"--config", good, "--branch", "main", "--control-socket", "/tmp/c.sock"}, check: func(t *testing.T, c runConfig) {
			if c.Branch != "main" || c.ControlSocket != "/tmp/c.sock" || c.Repo != "https://github.com/acme/config.git" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "deployments from flags", args: []string{"--config", good, "--github-deployments", "--github-environment", "staging"}, check: func(t *testing.T, c runConfig) {
			if !c.GitHubDeployments || c.GitHubEnvironment != "staging" || c.GitHubDeployStatus {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "unknown field in the file", args: []string{"--config", typo}, wantErr: "branchh"},
		{name: "missing required", args: []string{"--repo", "x"}, wantErr: "missing --gateway-socket, --state-dir"},
		{name: "bad poll interval", args: []string{"--config", good, "--poll-interval", "10ms"}, wantErr: "at least 1s"},
		{name: "heal interval default and off", args: []string{"--config", good, "--heal-interval", "0s"}, check: func(t *testing.T, c runConfig) {
			if c.HealInterval != "0s" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "bad heal interval", args: []string{"--config", good, "--heal-interval", "1ms"}, wantErr: "at least 100ms"},
		{name: "signatures need keys", args: []string{"--config", good, "--verify-signatures"}, wantErr: "--trusted-keys"},
		{name: "eval budget defaults", args: []string{"--config", good}, check: func(t *testing.T, c runConfig) {
			if c.EvalTimeout != "20s" || c.EvalMemory != "1 GiB" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "eval budget from the file, flag wins", args: []string{"--config", evalFile, "--eval-memory", "512MiB"}, check: func(t *testing.T, c runConfig) {
			if c.EvalTimeout != "5s" || c.EvalMemory != "512MiB" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "bad eval timeout", args: []string{"--config", good, "--eval-timeout", "soon"}, wantErr: "eval timeout"},
		{name: "bad eval memory", args: []string{"--config", good, "--eval-memory", "1MiB"}, wantErr: "at least 16 MiB"},
		{name: "webhook body cap default", args: []string{"--config", good}, check: func(t *testing.T, c runConfig) {
			if c.WebhookMaxBodyBytes != 1<<20 {
				t.Fatalf("WebhookMaxBodyBytes = %d, want 1 MiB", c.WebhookMaxBodyBytes)
			}
		}},
		{name: "webhook body cap set", args: []string{"--config", good, "--webhook-max-body-bytes", "4096"}, check: func(t *testing.T, c runConfig) {
			if c.WebhookMaxBodyBytes != 4096 {
				t.Fatalf("WebhookMaxBodyBytes = %d, want 4096", c.WebhookMaxBodyBytes)
			}
		}},
		{name: "webhook body cap over GitHub's", args: []string{"--config", good, "--webhook-max-body-bytes", "30000000"}, wantErr: "between 1024"},
		{name: "pull requests' clone bound default", args: []string{"--config", good}, check: func(t *testing.T, c runConfig) {
			if c.GitHubPRMaxStorageBytes != 1<<30 {
				t.Fatalf("GitHubPRMaxStorageBytes = %d, want 1 GiB", c.GitHubPRMaxStorageBytes)
			}
		}},
		{name: "pull requests' clone bound under 1 MiB", args: []string{"--config", good, "--github-pr-max-storage-bytes", "4096"}, wantErr: "at least 1048576"},
		{name: "git fetch cap under 1 MiB", args: []string{"--config", good, "--git-max-fetch-bytes", "4096"}, wantErr: "at least 1048576"},
		{name: "git fetch cap set", args: []string{"--config", good, "--git-max-fetch-bytes", "2097152"}, check: func(t *testing.T, c runConfig) {
			if c.GitMaxFetchBytes != 2<<20 {
				t.Fatalf("GitMaxFetchBytes = %d", c.GitMaxFetchBytes)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			c, err := parseRunConfig(tc.args, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
	"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com",
}

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitConfig(t *testing.T, dir, msg, yaml string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "cfg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cfg", "gw.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "add", "-A")
	gitCmd(t, dir, "commit", "-q", "-m", msg)
	return gitCmd(t, dir, "rev-parse", "HEAD")
}

func cfgYAML(port string) string {
	return "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:" + port + "\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n"
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cli runs one agent subcommand in-process and returns its exit code and
// stdout.
func cli(t *testing.T, fn func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fn(context.Background(), args, &out, &errb)
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return code, out.String()
}

func wrap(f func(context.Context, []string, io.Writer, io.Writer) int) func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int {
	return func(ctx context.Context, a []string, o, e *bytes.Buffer) int { return f(ctx, a, o, e) }
}

// TestAgentEndToEnd runs the wired agent against a real repository, a fake
// gateway on a real Unix socket, signed webhooks and the CLI commands.
func TestAgentEndToEnd(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first", cfgYAML("9001"))
	gw := admintest.New(t)
	state, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	secretFile := filepath.Join(state, "secret")
	os.WriteFile(secretFile, []byte("s3cret\n"), 0o600)
	addr := freeAddr(t)
	cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: gw.Sock, StateDir: state,
		ControlSocket: filepath.Join(state, "agent.sock"), WebhookAddr: addr, PollInterval: "1h",
		WebhookSecretFile: secretFile, KeepBundles: 100, LogLevel: "info"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runAgent: %v", err)
		}
	})
	waitUntil(t, "first commit served", func() bool { return gw.Version() == first })
	ctl := []string{"--control-socket", cfg.ControlSocket}

	// A signed push webhook syncs a new commit; a tampered one is refused.
	second := commitConfig(t, repo, "second", cfgYAML("9002"))
	body := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}`)
	for _, tc := range []struct {
		name string
		sig  string
		want int
	}{
		{"tampered", webhook.Sign([]byte("s3cret"), append(body, ' ')), http.StatusUnauthorized},
		{"signed", webhook.Sign([]byte("s3cret"), body), http.StatusAccepted},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", tc.name)
		req.Header.Set("X-Hub-Signature-256", tc.sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s webhook: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	waitUntil(t, "webhook-triggered sync", func() bool { return gw.Version() == second })

	// An invalid commit: `agent sync` fails, the old config keeps serving.
	bad := commitConfig(t, repo, "bad", strings.Replace(cfgYAML("9003"), "weight: 100", "weight: lots", 1))
	if code, _ := cli(t, wrap(runSync), ctl...); code != 1 {
		t.Fatalf("agent sync on an invalid commit: exit %d, want 1", code)
	}
	if gw.Version() != second {
		t.Fatalf("gateway runs %s after an invalid commit, want %s", gw.Version(), second)
	}
	code, out := cli(t, wrap(runHistory), append(ctl, "--json", "-n", "1")...)
	var hist []bundle.Entry
	if code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist) != 1 || hist[0].SHA != bad || hist[0].Result != bundle.ResultRejected {
		t.Fatalf("history: exit %d %s", code, out)
	}
	if code, out := cli(t, wrap(runHistory), ctl...); code != 0 || !strings.Contains(out, "cfg/gw.yaml:") {
		t.Fatalf("human history lacks the file:line of the error: %s", out)
	}

	// Rollback with no sha goes to the previous applied commit and pins.
	if code, out := cli(t, wrap(runRollback), append(ctl, "--reason", "test")...); code != 0 || !strings.Contains(out, "Rolled back to "+first[:12]) {
		t.Fatalf("rollback: exit %d %s", code, out)
	}
	var st syncer.Status
	code, out = cli(t, wrap(runStatus), append(ctl, "--json")...)
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Mode != "pinned" || gw.Version() != first {
		t.Fatalf("status after rollback: exit %d %s", code, out)
	}
	if code, _ := cli(t, wrap(runRollback), append(ctl, "ffffffff")...); code != 1 {
		t.Fatalf("rollback to an unknown prefix: exit %d, want 1", code)
	}
	if code, out := cli(t, wrap(runResume), ctl...); code != 0 || !strings.Contains(out, "tracking") {
		t.Fatalf("resume: exit %d %s", code, out)
	}
	if code, out := cli(t, wrap(runStatus), ctl...); code != 0 || !strings.Contains(out, "Tracking:") {
		t.Fatalf("human status: exit %d %s", code, out)
	}
	// Metrics are served next to the webhook.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	m.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"gitgate_agent_syncs_total", "gitgate_agent_webhook_deliveries_total", "gitgate_agent_fetches_total", "gitgate_agent_desired_info"} {
		if !strings.Contains(m.String(), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// TestKubernetesExampleConfigParses keeps examples/kubernetes true: its
// agent.yaml must pass the strict parser.
func TestKubernetesExampleConfigParses(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../examples/kubernetes/agent-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["agent.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c, err := parseRunConfig([]string{"--config", p}, &stderr)
	if err != nil {
		t.Fatalf("examples/kubernetes agent.yaml: %v", err)
	}
	if c.GatewaySocket != "/var/run/gitgate/admin.sock" || c.WebhookAddr != ":9000" {
		t.Fatalf("parsed %+v", c)
	}
}

func TestPREvaluator(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	base := commitConfig(t, repo, "base", cfgYAML("9001"))
	gitCmd(t, repo, "checkout", "-q", "-b", "pr1")
	good := commitConfig(t, repo, "change port", cfgYAML("9002"))
	gitCmd(t, repo, "update-ref", "refs/pull/1/head", good)
	gitCmd(t, repo, "checkout", "-q", "-b", "pr2", base)
	bad := commitConfig(t, repo, "typo", strings.Replace(cfgYAML("9001"), "weight:", "wieght:", 1))
	gitCmd(t, repo, "update-ref", "refs/pull/2/head", bad)
	gitCmd(t, repo, "checkout", "-q", "main")
	state, err := os.MkdirTemp("", "eval")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	// The same checks with the clone kept, and with it emptied before
	// every check (a bound of one byte): the same results.
	for _, maxStorage := range []int64{1 << 30, 1} {
		src, err := gitsrc.Open(gitsrc.Options{URL: repo, Branch: "main", StorageDir: filepath.Join(state, fmt.Sprint("git-pulls-", maxStorage))})
		if err != nil {
			t.Fatal(err)
		}
		checkPREvaluations(t, prEvaluator(src, "cfg", budget.New(budget.Default), maxStorage, zerolog.Nop()), base, good, bad)
	}
}

// checkPREvaluations runs TestPREvaluator's checks with eval.
func checkPREvaluations(t *testing.T, eval ghreport.Evaluator, base, good, bad string) {
	t.Helper()
	tests := []struct {
		name        string
		pr          ghreport.PullRequest
		wantHead    string
		wantDiags   bool
		wantChanged bool
	}{
		{"valid head is diffed against the base", ghreport.PullRequest{Number: 1, HeadSHA: good, BaseSHA: base}, good, false, true},
		{"invalid head has diagnostics", ghreport.PullRequest{Number: 2, HeadSHA: bad}, bad, true, false},
		{"head not named: fetched by number", ghreport.PullRequest{Number: 1}, good, false, true},
	}
	for _, tc := range tests {
		ev, err := eval(context.Background(), tc.pr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ev.HeadSHA != tc.wantHead || (len(ev.Diagnostics) > 0) != tc.wantDiags || ev.Changed != tc.wantChanged {
			t.Fatalf("%s: %+v", tc.name, ev)
		}
		if tc.wantDiags && (ev.Diagnostics[0].File != "gw.yaml" || ev.Diagnostics[0].Line == 0) {
			t.Fatalf("%s: diagnostics %+v, want gw.yaml with a line (relative to --path)", tc.name, ev.Diagnostics)
		}
		if tc.wantChanged && (ev.BaseSHA != base || ev.PlanMarkdown == nil || ev.Counts["upstreams"]["update"] != 1) {
			t.Fatalf("%s: base %s counts %v", tc.name, ev.BaseSHA, ev.Counts)
		}
	}
}

// TestSecondAgentOnStateDirRefused starts a second agent on the state
// directory of a running one: it must stop at once with an error naming the
// first one's pid, and leave the first one's control socket serving.
func TestSecondAgentOnStateDirRefused(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first", cfgYAML("9001"))
	gw := admintest.New(t)
	state, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: gw.Sock, StateDir: state,
		ControlSocket: filepath.Join(state, "agent.sock"), PollInterval: "1h", KeepBundles: 100, LogLevel: "info"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("first runAgent: %v", err)
		}
	})
	waitUntil(t, "first commit served", func() bool { return gw.Version() == first })

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done2 := make(chan error, 1)
	go func() { done2 <- runAgent(ctx2, cfg, zerolog.Nop()) }()
	select {
	case err := <-done2:
		var held *statelock.HeldError
		if !errors.As(err, &held) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
			t.Fatalf("second agent: %v, want a refusal naming pid %d", err, os.Getpid())
		}
	case <-time.After(20 * time.Second):
		cancel2()
		<-done2
		t.Fatal("a second agent on the same state directory kept running")
	}
	if code, out := cli(t, wrap(runStatus), "--control-socket", cfg.ControlSocket); code != 0 || !strings.Contains(out, "Tracking:") {
		t.Fatalf("first agent's control socket after the refusal: exit %d %s", code, out)
	}
}

// TestPullRequestSourceCapsFetches: with --github-pr-max-storage-bytes under
// --git-max-fetch-bytes, a pull request head that would not fit in the pull
// requests' clone is refused as it is fetched, and a small one is checked.
func TestPullRequestSourceCapsFetches(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	base := commitConfig(t, repo, "base", cfgYAML("9001"))
	gitCmd(t, repo, "checkout", "-q", "-b", "small")
	small := commitConfig(t, repo, "change port", cfgYAML("9002"))
	gitCmd(t, repo, "update-ref", "refs/pull/1/head", small)
	gitCmd(t, repo, "checkout", "-q", "-b", "big", base)
	noise := make([]byte, 1<<20) // does not compress: a 2 MiB pack
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "blob.bin"), hex.EncodeToString(noise))
	gitCmd(t, repo, "add", "blob.bin")
	gitCmd(t, repo, "commit", "-q", "-m", "a large file beside the config")
	gitCmd(t, repo, "update-ref", "refs/pull/2/head", gitCmd(t, repo, "rev-parse", "HEAD"))
	gitCmd(t, repo, "checkout", "-q", "main")

	state := t.TempDir()
	const bound = 1 << 20
	src, err := pullRequestSource(state, gitsrc.Options{URL: repo, Branch: "main", MaxFetchBytes: 1 << 30}, bound, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if src.StorageDir() != filepath.Join(state, "git-pulls") {
		t.Fatalf("pull requests' clone in %s", src.StorageDir())
	}
	eval := prEvaluator(src, "cfg", budget.New(budget.Default), bound, zerolog.Nop())
	if ev, err := eval(context.Background(), ghreport.PullRequest{Number: 2}); !errors.Is(err, gitsrc.ErrFetchTooLarge) {
		t.Fatalf("a head over the bound: %+v, %v; want %v", ev, err, gitsrc.ErrFetchTooLarge)
	}
	if ev, err := eval(context.Background(), ghreport.PullRequest{Number: 1}); err != nil || ev.HeadSHA != small || !ev.Changed {
		t.Fatalf("a small head: %+v, %v; want %s checked", ev, err, small)
	}
}
