package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/control"
	"github.com/gitgate/gitgate/agent/internal/diff"
	"github.com/gitgate/gitgate/agent/internal/ghreport"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/peers"
	"github.com/gitgate/gitgate/agent/internal/statelock"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/agent/internal/webhook"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// tokenEnv holds the Git token when --git-token-file is not given.
const tokenEnv = "GITGATE_GIT_TOKEN"

// runConfig is everything `agent run` needs. It is read from --config
// (agent.yaml, strict) and then from flags, which win.
type runConfig struct {
	// Repo is the config repository: https://, ssh://, git@host:path,
	// file:// or a local path. Required.
	Repo string `json:"repo"`
	// Branch to track. Default "main".
	Branch string `json:"branch,omitempty"`
	// Path is the config directory in the repository. Default: the root.
	Path string `json:"path,omitempty"`
	// GatewaySocket is the gateway's admin socket. Required.
	GatewaySocket string `json:"gatewaySocket"`
	// StateDir holds the clone, bundles, history and state. Required.
	StateDir string `json:"stateDir"`
	// ControlSocket is this agent's control socket. Default
	// <stateDir>/agent.sock.
	ControlSocket string `json:"controlSocket,omitempty"`
	// WebhookAddr serves POST /webhooks/github and /metrics. Empty: off.
	WebhookAddr string `json:"webhookAddr,omitempty"`
	// WebhookRepo ("owner/name") makes deliveries for other repositories
	// ignored. Empty: any.
	WebhookRepo string `json:"webhookRepo,omitempty"`
	// WebhookMaxBodyBytes caps a delivery's body; larger ones are refused
	// (413) before their signature is checked. Default 1 MiB.
	WebhookMaxBodyBytes int64 `json:"webhookMaxBodyBytes,omitempty"`
	// PollInterval between head checks. Default 30s.
	PollInterval string `json:"pollInterval,omitempty"`
	// HealInterval between checks that the gateway runs the desired digest
	// (no Git involved). Default 5s; "0s" checks only during syncs.
	HealInterval string `json:"healInterval,omitempty"`
	// WebhookSecretFile holds the webhook secret; else $GITGATE_WEBHOOK_SECRET.
	WebhookSecretFile string `json:"webhookSecretFile,omitempty"`
	// GitTokenFile holds an HTTPS token; else $GITGATE_GIT_TOKEN.
	GitTokenFile string `json:"gitTokenFile,omitempty"`
	// SSHKeyFile is a private key for SSH URLs.
	SSHKeyFile string `json:"sshKeyFile,omitempty"`
	// KnownHostsFile checks SSH host keys. Default: ~/.ssh/known_hosts.
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
	// VerifySignatures rejects commits not signed by TrustedKeys.
	VerifySignatures bool `json:"verifySignatures,omitempty"`
	// TrustedKeys is an armored PGP public key ring file.
	TrustedKeys string `json:"trustedKeys,omitempty"`
	// KeepBundles is how many bundles stay on disk. Default 100.
	KeepBundles int `json:"keepBundles,omitempty"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `json:"logLevel,omitempty"`
	// GitHubRepo ("owner/name") turns on GitHub reports (PR checks and
	// comments, deploy statuses) when a token or an App is configured.
	GitHubRepo string `json:"githubRepo,omitempty"`
	// GitHubTokenFile holds a GitHub token; else $GITGATE_GITHUB_TOKEN.
	GitHubTokenFile string `json:"githubTokenFile,omitempty"`
	// GitHubURL is a GitHub Enterprise Server URL. Default: github.com.
	GitHubURL string `json:"githubURL,omitempty"`
	// GitHubAppID, GitHubInstallationID and GitHubAppKeyFile authenticate
	// as a GitHub App installation (check runs need one).
	GitHubAppID          int64  `json:"githubAppID,omitempty"`
	GitHubInstallationID int64  `json:"githubInstallationID,omitempty"`
	GitHubAppKeyFile     string `json:"githubAppKeyFile,omitempty"`
	// GitHubDeployStatus posts gitgate/deploy on each applied commit.
	GitHubDeployStatus bool `json:"githubDeployStatus,omitempty"`
	// GitHubDeployments creates a GitHub Deployment and its statuses for
	// each applied commit instead of the gitgate/deploy status.
	GitHubDeployments bool `json:"githubDeployments,omitempty"`
	// GitHubEnvironment names the Deployments' environment. Default "production".
	GitHubEnvironment string `json:"githubEnvironment,omitempty"`
	// EvalTimeout bounds the wall-clock time of one validation of a config
	// with .cue files (pushed commits and pull requests). Default "20s".
	EvalTimeout string `json:"evalTimeout,omitempty"`
	// EvalMemory bounds the memory of one validation of a config with .cue
	// files ("512MiB", "1GiB"). Default "1GiB".
	EvalMemory string `json:"evalMemory,omitempty"`

	// --- fleet (issue 17) ---
	// Peers are the other replicas, nudged to re-check Git when this one
	// gets a webhook, rolls back or resumes: "dns:NAME:PORT" (every A/AAAA
	// record of a headless Service) or a comma-separated host:port list.
	// This replica leaves itself out. Empty: no fan-out.
	Peers string `json:"peers,omitempty"`
	// --- end fleet ---
}

// parseRunConfig reads --config first, then lets explicitly set flags win.
func parseRunConfig(args []string, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("agent run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var flagCfg runConfig
	configFile := fs.String("config", "", "agent.yaml with the same settings (flags win)")
	fs.StringVar(&flagCfg.Repo, "repo", "", "config repository URL or local path (required)")
	fs.StringVar(&flagCfg.Branch, "branch", "main", "branch to track")
	fs.StringVar(&flagCfg.Path, "path", "", "config directory inside the repository (default: the root)")
	fs.StringVar(&flagCfg.GatewaySocket, "gateway-socket", "", "the gateway's admin socket (required)")
	fs.StringVar(&flagCfg.StateDir, "state-dir", "", "directory for the clone, bundles, history and state (required)")
	fs.StringVar(&flagCfg.ControlSocket, "control-socket", "", "control socket (default <state-dir>/agent.sock)")
	fs.StringVar(&flagCfg.WebhookAddr, "webhook-addr", "", "address for POST /webhooks/github and /metrics (default: off)")
	fs.StringVar(&flagCfg.WebhookRepo, "webhook-repo", "", "owner/name whose deliveries count (default: any)")
	fs.Int64Var(&flagCfg.WebhookMaxBodyBytes, "webhook-max-body-bytes", webhook.DefaultMaxBodyBytes, "largest webhook delivery accepted, in bytes (read before its signature is checked)")
	fs.StringVar(&flagCfg.PollInterval, "poll-interval", "30s", "time between head checks (jittered ±10%)")
	fs.StringVar(&flagCfg.HealInterval, "heal-interval", "5s", "time between checks that the gateway runs the desired config (0s: only during syncs)")
	fs.StringVar(&flagCfg.WebhookSecretFile, "webhook-secret-file", "", "file with the webhook secret (else $"+webhook.SecretEnv+")")
	fs.StringVar(&flagCfg.GitTokenFile, "git-token-file", "", "file with an HTTPS token (else $"+tokenEnv+")")
	fs.StringVar(&flagCfg.SSHKeyFile, "ssh-key-file", "", "SSH private key for ssh:// and git@ URLs")
	fs.StringVar(&flagCfg.KnownHostsFile, "known-hosts-file", "", "known_hosts for SSH (default ~/.ssh/known_hosts)")
	fs.BoolVar(&flagCfg.VerifySignatures, "verify-signatures", false, "apply only commits signed by --trusted-keys")
	fs.StringVar(&flagCfg.TrustedKeys, "trusted-keys", "", "armored PGP public keys for --verify-signatures")
	fs.IntVar(&flagCfg.KeepBundles, "keep-bundles", 100, "bundles of applied commits kept on disk")
	fs.StringVar(&flagCfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&flagCfg.GitHubRepo, "github-repo", "", "owner/name: report PR checks, comments and deploys to GitHub")
	fs.StringVar(&flagCfg.GitHubTokenFile, "github-token-file", "", "file with a GitHub token (else $"+ghreport.TokenEnv+")")
	fs.StringVar(&flagCfg.GitHubURL, "github-url", "", "GitHub Enterprise Server URL (default github.com)")
	fs.Int64Var(&flagCfg.GitHubAppID, "github-app-id", 0, "GitHub App id (with --github-installation-id and --github-app-key-file)")
	fs.Int64Var(&flagCfg.GitHubInstallationID, "github-installation-id", 0, "GitHub App installation id")
	fs.StringVar(&flagCfg.GitHubAppKeyFile, "github-app-key-file", "", "GitHub App private key (PEM)")
	fs.BoolVar(&flagCfg.GitHubDeployStatus, "github-deploy-status", false, "post the gitgate/deploy status on applied commits")
	fs.BoolVar(&flagCfg.GitHubDeployments, "github-deployments", false, "create a GitHub Deployment and its statuses for applied commits (instead of --github-deploy-status)")
	fs.StringVar(&flagCfg.GitHubEnvironment, "github-environment", "", "environment of --github-deployments (default \"production\")")
	fs.StringVar(&flagCfg.EvalTimeout, "eval-timeout", budget.Default.Timeout.String(), strings.ReplaceAll(evalTimeoutUsage, "`", ""))
	fs.StringVar(&flagCfg.EvalMemory, "eval-memory", budget.FormatBytes(budget.Default.Memory), strings.ReplaceAll(evalMemoryUsage, "`", ""))
	// --- fleet (issue 17) ---
	fs.StringVar(&flagCfg.Peers, "peers", "", "peers to nudge on a webhook, rollback or resume: dns:NAME:PORT (a headless Service) or host:port,... (needs --webhook-addr)")
	// --- end fleet ---
	if err := fs.Parse(args); err != nil {
		return runConfig{}, err
	}
	if fs.NArg() > 0 {
		return runConfig{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := runConfig{Branch: "main", WebhookMaxBodyBytes: webhook.DefaultMaxBodyBytes, PollInterval: "30s", HealInterval: "5s", KeepBundles: 100, LogLevel: "info",
		EvalTimeout: budget.Default.Timeout.String(), EvalMemory: budget.FormatBytes(budget.Default.Memory)}
	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return runConfig{}, fmt.Errorf("reading --config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return runConfig{}, fmt.Errorf("%s: %w", *configFile, err)
		}
	}
	// Flags given on the command line win over the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "repo":
			cfg.Repo = flagCfg.Repo
		case "branch":
			cfg.Branch = flagCfg.Branch
		case "path":
			cfg.Path = flagCfg.Path
		case "gateway-socket":
			cfg.GatewaySocket = flagCfg.GatewaySocket
		case "state-dir":
			cfg.StateDir = flagCfg.StateDir
		case "control-socket":
			cfg.ControlSocket = flagCfg.ControlSocket
		case "webhook-addr":
			cfg.WebhookAddr = flagCfg.WebhookAddr
		case "webhook-repo":
			cfg.WebhookRepo = flagCfg.WebhookRepo
		case "webhook-max-body-bytes":
			cfg.WebhookMaxBodyBytes = flagCfg.WebhookMaxBodyBytes
		case "poll-interval":
			cfg.PollInterval = flagCfg.PollInterval
		case "heal-interval":
			cfg.HealInterval = flagCfg.HealInterval
		case "webhook-secret-file":
			cfg.WebhookSecretFile = flagCfg.WebhookSecretFile
		case "git-token-file":
			cfg.GitTokenFile = flagCfg.GitTokenFile
		case "ssh-key-file":
			cfg.SSHKeyFile = flagCfg.SSHKeyFile
		case "known-hosts-file":
			cfg.KnownHostsFile = flagCfg.KnownHostsFile
		case "verify-signatures":
			cfg.VerifySignatures = flagCfg.VerifySignatures
		case "trusted-keys":
			cfg.TrustedKeys = flagCfg.TrustedKeys
		case "keep-bundles":
			cfg.KeepBundles = flagCfg.KeepBundles
		case "log-level":
			cfg.LogLevel = flagCfg.LogLevel
		case "github-repo":
			cfg.GitHubRepo = flagCfg.GitHubRepo
		case "github-token-file":
			cfg.GitHubTokenFile = flagCfg.GitHubTokenFile
		case "github-url":
			cfg.GitHubURL = flagCfg.GitHubURL
		case "github-app-id":
			cfg.GitHubAppID = flagCfg.GitHubAppID
		case "github-installation-id":
			cfg.GitHubInstallationID = flagCfg.GitHubInstallationID
		case "github-app-key-file":
			cfg.GitHubAppKeyFile = flagCfg.GitHubAppKeyFile
		case "github-deploy-status":
			cfg.GitHubDeployStatus = flagCfg.GitHubDeployStatus
		case "github-deployments":
			cfg.GitHubDeployments = flagCfg.GitHubDeployments
		case "github-environment":
			cfg.GitHubEnvironment = flagCfg.GitHubEnvironment
		case "eval-timeout":
			cfg.EvalTimeout = flagCfg.EvalTimeout
		case "eval-memory":
			cfg.EvalMemory = flagCfg.EvalMemory
		case "peers": // fleet (issue 17)
			cfg.Peers = flagCfg.Peers
		}
	})
	var missing []string
	for name, v := range map[string]string{"--repo": cfg.Repo, "--gateway-socket": cfg.GatewaySocket, "--state-dir": cfg.StateDir} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return runConfig{}, fmt.Errorf("missing %s", strings.Join(sortedStrings(missing), ", "))
	}
	if cfg.ControlSocket == "" {
		cfg.ControlSocket = filepath.Join(cfg.StateDir, "agent.sock")
	}
	if d, err := time.ParseDuration(cfg.HealInterval); err != nil || d < 0 || (d > 0 && d < 100*time.Millisecond) {
		return runConfig{}, fmt.Errorf("heal interval %q must be 0s or a duration of at least 100ms", cfg.HealInterval)
	}
	if d, err := time.ParseDuration(cfg.PollInterval); err != nil || d < time.Second {
		return runConfig{}, fmt.Errorf("poll interval %q must be a duration of at least 1s", cfg.PollInterval)
	}
	if _, err := cfg.evaluator(); err != nil {
		return runConfig{}, err
	}
	if cfg.WebhookMaxBodyBytes < 1024 || cfg.WebhookMaxBodyBytes > 25<<20 {
		return runConfig{}, fmt.Errorf("webhook max body bytes %d must be between 1024 and %d (GitHub's 25 MB cap)", cfg.WebhookMaxBodyBytes, 25<<20)
	}
	if cfg.VerifySignatures && cfg.TrustedKeys == "" {
		return runConfig{}, errors.New("--verify-signatures needs --trusted-keys")
	}
	if _, err := zerolog.ParseLevel(cfg.LogLevel); err != nil {
		return runConfig{}, fmt.Errorf("log level: %w", err)
	}
	if cfg.GitHubRepo != "" {
		if o, n, ok := strings.Cut(cfg.GitHubRepo, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
			return runConfig{}, fmt.Errorf("github repo %q must be owner/name", cfg.GitHubRepo)
		}
	}
	if cfg.WebhookRepo == "" {
		cfg.WebhookRepo = cfg.GitHubRepo
	}
	// --- fleet (issue 17) ---
	if _, err := peers.NewSet(cfg.Peers, peers.SetOptions{}); err != nil {
		return runConfig{}, fmt.Errorf("--peers: %w", err)
	}
	if cfg.Peers != "" && cfg.WebhookAddr == "" {
		return runConfig{}, errors.New("--peers needs --webhook-addr: peers nudge each other there")
	}
	// --- end fleet ---
	return cfg, nil
}

// evaluator returns the Evaluator of EvalTimeout and EvalMemory (empty:
// budget.Default's).
func (cfg runConfig) evaluator() (*budget.Evaluator, error) {
	timeout, memory := budget.Default.Timeout, budget.Default.Memory
	var err error
	if cfg.EvalTimeout != "" {
		if timeout, err = time.ParseDuration(cfg.EvalTimeout); err != nil {
			return nil, fmt.Errorf("eval timeout: %w", err)
		}
	}
	if cfg.EvalMemory != "" {
		if memory, err = budget.ParseBytes(cfg.EvalMemory); err != nil {
			return nil, fmt.Errorf("eval memory: %w", err)
		}
	}
	return newEvaluator(timeout, memory)
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

func runRun(ctx context.Context, args []string, _, stderr io.Writer) int {
	cfg, err := parseRunConfig(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "agent run: %v\n", err)
		return 2
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel)
	zerolog.TimeFieldFormat = time.RFC3339Nano
	logger := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	if err := runAgent(ctx, cfg, logger); err != nil {
		logger.Error().Err(err).Msg("agent failed")
		return 1
	}
	return 0
}

// readSecretFile returns the trimmed content of file, or $env when file is
// empty.
func readSecretFile(file, env string) (string, error) {
	if file == "" {
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// runAgent wires the packages together and runs until ctx ends.
func runAgent(ctx context.Context, cfg runConfig, logger zerolog.Logger) error {
	poll, _ := time.ParseDuration(cfg.PollInterval)
	heal, _ := time.ParseDuration(cfg.HealInterval)
	token, err := readSecretFile(cfg.GitTokenFile, tokenEnv)
	if err != nil {
		return fmt.Errorf("git token: %w", err)
	}
	var trusted string
	if cfg.VerifySignatures {
		b, err := os.ReadFile(cfg.TrustedKeys)
		if err != nil {
			return fmt.Errorf("reading trusted keys: %w", err)
		}
		trusted = string(b)
	}
	ev, err := cfg.evaluator()
	if err != nil {
		return err
	}
	// One agent per state directory: a second one would sync too, write
	// the same history and take over the control socket.
	lock, err := statelock.Acquire(cfg.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	src, err := gitsrc.Open(gitsrc.Options{
		URL: cfg.Repo, Branch: cfg.Branch, StorageDir: filepath.Join(cfg.StateDir, "git"),
		Token: token, SSHKeyFile: cfg.SSHKeyFile, KnownHostsFile: cfg.KnownHostsFile, TrustedKeys: trusted,
	})
	if err != nil {
		return err
	}
	store, err := bundle.Open(cfg.StateDir, bundle.Options{KeepBundles: cfg.KeepBundles})
	if err != nil {
		return err
	}
	defer store.Close()
	if n := store.Dropped(); n > 0 {
		logger.Warn().Int("lines", n).Msg("dropped torn or corrupt history lines")
	}
	gw := client.New(cfg.GatewaySocket)
	defer gw.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// GitHub reports are optional; the reporter's worker is ours to stop.
	rep, err := newGitHubReporter(cfg, src, ev, logger)
	if err != nil {
		return err
	}
	var (
		commitReporter syncer.Reporter
		prReporter     webhook.PullRequestReporter
	)
	if rep != nil {
		commitReporter, prReporter = rep, rep
		repDone := make(chan struct{})
		repCtx, repCancel := context.WithCancel(context.Background())
		go func() {
			defer close(repDone)
			if err := rep.Run(repCtx); err != nil && !errors.Is(err, context.Canceled) {
				logger.Warn().Err(err).Msg("GitHub reporter stopped")
			}
		}()
		defer func() {
			repCancel()
			_ = rep.Close()
			<-repDone
		}()
		logger.Info().Str("repo", cfg.GitHubRepo).Msg("GitHub reports on")
	}

	loop, err := syncer.New(syncer.Options{
		Source: src, Store: store, Gateway: gw, Path: cfg.Path, PollInterval: poll, HealInterval: heal, Validator: ev,
		Reporter: commitReporter, Metrics: syncer.NewMetrics(reg), Logger: logger,
	})
	if err != nil {
		return err
	}

	// --- fleet (issue 17): nudges to and from peers, GET /v1/replica ---
	fl, err := newFleetParts(cfg, loop, gw, reg, logger)
	if err != nil {
		return err
	}
	defer fl.Close()
	// --- end fleet ---

	ctl, err := control.Listen(cfg.ControlSocket, fl.backend(), logger)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ctl.Close(sctx)
	}()

	var hookSrv *http.Server
	hookDone := make(chan error, 1)
	if cfg.WebhookAddr != "" {
		secret, err := webhook.LoadSecret(cfg.WebhookSecretFile)
		if err != nil {
			return err
		}
		hook, err := webhook.New(webhook.Options{
			Secret: secret, Branch: cfg.Branch, Repo: cfg.WebhookRepo, Nudge: fl.onWebhook /* fleet */, MaxBodyBytes: cfg.WebhookMaxBodyBytes,
			PullRequests: prReporter, Registerer: reg, Logger: logger.With().Str("component", "webhook").Logger(),
		})
		if err != nil {
			return err
		}
		defer hook.Close()
		mux := http.NewServeMux()
		mux.Handle("POST /webhooks/github", hook)
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		fl.register(mux) // fleet (issue 17)
		ln, err := net.Listen("tcp", cfg.WebhookAddr)
		if err != nil {
			return fmt.Errorf("listening for webhooks on %s: %w", cfg.WebhookAddr, err)
		}
		hookSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: time.Minute}
		go func() {
			err := hookSrv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			hookDone <- err
		}()
		logger.Info().Str("addr", ln.Addr().String()).Msg("webhook listener started")
	}

	logger.Info().Str("repo", src.URL()).Str("branch", cfg.Branch).Str("path", cfg.Path).
		Str("control", cfg.ControlSocket).Dur("poll", poll).Msg("agent started")
	err = loop.Run(ctx)
	if hookSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hookSrv.Shutdown(sctx)
		cancel()
		if herr := <-hookDone; herr != nil {
			err = errors.Join(err, herr)
		}
	}
	logger.Info().Msg("agent stopped")
	return err
}

// newGitHubReporter returns the GitHub reporter, or nil when GitHub
// reports are not configured (no --github-repo, or no token and no App).
func newGitHubReporter(cfg runConfig, src *gitsrc.Source, ev *budget.Evaluator, logger zerolog.Logger) (*ghreport.Reporter, error) {
	if cfg.GitHubRepo == "" {
		return nil, nil
	}
	token, err := ghreport.LoadToken(cfg.GitHubTokenFile)
	if err != nil {
		return nil, err
	}
	app := cfg.GitHubAppID != 0 || cfg.GitHubInstallationID != 0 || cfg.GitHubAppKeyFile != ""
	if token == "" && !app {
		logger.Warn().Str("repo", cfg.GitHubRepo).Msg("no GitHub token or App configured: GitHub reports off")
		return nil, nil
	}
	gc, err := ghreport.NewClient(ghreport.ClientConfig{
		Token: token, BaseURL: cfg.GitHubURL,
		AppID: cfg.GitHubAppID, InstallationID: cfg.GitHubInstallationID, PrivateKeyFile: cfg.GitHubAppKeyFile,
	})
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(cfg.GitHubRepo, "/")
	return ghreport.New(ghreport.Options{
		Client: gc, Owner: owner, Repo: name, BaseBranch: cfg.Branch, ConfigPath: cfg.Path,
		Evaluate: prEvaluator(src, cfg.Path, ev), DeployStatuses: cfg.GitHubDeployStatus,
		Deployments: cfg.GitHubDeployments, Environment: cfg.GitHubEnvironment,
		Logger: logger.With().Str("component", "ghreport").Logger(),
	})
}

// prEvaluator validates a pull request's head with the same loader and
// budget as a sync and diffs it against the base, reading both from the
// agent's clone (fetching refs/pull/N/head when the head is not local yet).
func prEvaluator(src *gitsrc.Source, path string, eval *budget.Evaluator) ghreport.Evaluator {
	return func(ctx context.Context, pr ghreport.PullRequest) (ghreport.Evaluation, error) {
		head := plumbing.NewHash(pr.HeadSHA)
		if pr.HeadSHA == "" || !src.HasCommit(head) {
			h, err := src.FetchRef(ctx, fmt.Sprintf("refs/pull/%d/head", pr.Number))
			if err != nil {
				return ghreport.Evaluation{}, err
			}
			head = h
		}
		ev := ghreport.Evaluation{HeadSHA: head.String()}
		headCfg, diags, err := loadCommit(ctx, src, eval, head, path)
		if err != nil || len(diags) > 0 {
			ev.Diagnostics = diags
			return ev, err
		}
		base := plumbing.NewHash(pr.BaseSHA)
		if pr.BaseSHA == "" || !src.HasCommit(base) {
			if base, _, err = src.Update(ctx); err != nil {
				return ev, err
			}
		}
		ev.BaseSHA = base.String()
		baseCfg, baseDiags, err := loadCommit(ctx, src, eval, base, path)
		if err != nil {
			return ev, err
		}
		if len(baseDiags) > 0 {
			baseCfg = nil // an invalid base: the plan shows everything as new
		}
		plan := diff.Compute(baseCfg, headCfg)
		sum := plan.Summary()
		ev.PlanMarkdown = plan.Markdown
		ev.Changed = !plan.Empty()
		ev.Counts = map[string]map[string]int{}
		for kind, c := range map[string]diff.Counts{"routes": sum.Routes, "upstreams": sum.Upstreams, "policies": sum.Policies} {
			if c.Total() > 0 {
				ev.Counts[kind] = map[string]int{"create": c.Create, "update": c.Update, "delete": c.Delete}
			}
		}
		return ev, nil
	}
}

// loadCommit reads and validates the config path at commit h, its CUE under
// ev's budget. Problems a user must fix come back as diagnostics, not as the
// error.
func loadCommit(ctx context.Context, src *gitsrc.Source, ev *budget.Evaluator, h plumbing.Hash, path string) (*schemas.Config, []schemas.Diagnostic, error) {
	files, err := src.Files(h, path, load.Limits{})
	if err != nil {
		var inv *schemas.InvalidError
		if errors.As(err, &inv) {
			return nil, inv.Diagnostics, nil
		}
		return nil, nil, err
	}
	res, err := ev.Files(ctx, files, load.Limits{})
	if err != nil {
		return nil, nil, fmt.Errorf("validating %s: %w", h, err)
	}
	return res.Config, res.Diagnostics, nil
}
