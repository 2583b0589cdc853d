package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/control"
	"github.com/gitgate/gitgate/agent/internal/diff"
	"github.com/gitgate/gitgate/agent/internal/ghreport"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/notify"
	"github.com/gitgate/gitgate/agent/internal/peers"
	"github.com/gitgate/gitgate/agent/internal/safety"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/agent/internal/statelock"
	"github.com/gitgate/gitgate/agent/internal/statusmetrics"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/agent/internal/webhook"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas/load"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// tokenEnv holds the Git token when --git-token-file is not given.
const tokenEnv = "GITGATE_GIT_TOKEN"

// runConfig is everything `agent run` needs. It is read from --config
// (agent.yaml, strict) and then from flags, which win; runFlags names each
// field's flag, agent.yaml key and default.
type runConfig struct {
	// Repo is the config repository: https://, ssh://, git@host:path,
	// file:// or a local path. Required.
	Repo string
	// Branch to track. Default "main".
	Branch string
	// Path is the config directory in the repository. Default: the root.
	Path string
	// GatewaySocket is the gateway's admin socket. Required.
	GatewaySocket string
	// StateDir holds the clone, bundles, history and state. Required.
	StateDir string
	// ControlSocket is this agent's control socket. Default
	// <stateDir>/agent.sock.
	ControlSocket string
	// WebhookAddr serves POST /webhooks/{github,gitlab,gitea,bitbucket} and /metrics. Empty: off.
	WebhookAddr string
	// WebhookRepo ("owner/name") makes deliveries for other repositories
	// ignored. Empty: any.
	WebhookRepo string
	// WebhookMaxBodyBytes caps a delivery's body; larger ones are refused
	// (413) before their signature is checked. Default 1 MiB.
	WebhookMaxBodyBytes int64
	// GitMaxFetchBytes caps each response of an HTTP(S) Git server (the
	// refs listing, a fetch's pack) and each fetched pack over any
	// transport. Default 1 GiB.
	GitMaxFetchBytes int64
	// PollInterval between head checks. Default 30s.
	PollInterval string
	// HealInterval between checks that the gateway runs the desired digest
	// (no Git involved). Default 5s; "0s" checks only during syncs.
	HealInterval string
	// WebhookSecretFile holds the webhook secret; else $GITGATE_WEBHOOK_SECRET.
	WebhookSecretFile string
	// GitTokenFile holds an HTTPS token; else $GITGATE_GIT_TOKEN.
	GitTokenFile string
	// SSHKeyFile is a private key for SSH URLs.
	SSHKeyFile string
	// PushTokenFile holds an HTTPS token with push rights to the pin tags
	// (refs/tags/gitgate/<branch>/), never the read token. Empty (and no
	// PushSSHKeyFile): rollbacks pin this replica only, unless the
	// repository is a local path or file:// URL.
	PushTokenFile string
	// PushSSHKeyFile is an SSH private key with push rights to the pin tags.
	PushSSHKeyFile string
	// KnownHostsFile checks SSH host keys. Default: ~/.ssh/known_hosts.
	KnownHostsFile string
	// VerifySignatures rejects commits not signed by TrustedKeys.
	VerifySignatures bool
	// TrustedKeys is an armored PGP public key ring file or an SSH
	// allowed_signers file.
	TrustedKeys string
	// KeepBundles is how many bundles stay on disk. Default 100.
	KeepBundles int
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// GitHubRepo ("owner/name") turns on GitHub reports (PR checks and
	// comments, deploy statuses) when a token or an App is configured.
	GitHubRepo string
	// GitHubTokenFile holds a GitHub token; else $GITGATE_GITHUB_TOKEN.
	GitHubTokenFile string
	// GitHubURL is a GitHub Enterprise Server URL. Default: github.com.
	GitHubURL string
	// GitHubAppID, GitHubInstallationID and GitHubAppKeyFile authenticate
	// as a GitHub App installation (check runs need one).
	GitHubAppID          int64
	GitHubInstallationID int64
	GitHubAppKeyFile     string
	// GitHubDeployStatus posts gitgate/deploy on each applied commit.
	GitHubDeployStatus bool
	// GitHubDeployments creates a GitHub Deployment and its statuses for
	// each applied commit instead of the gitgate/deploy status.
	GitHubDeployments bool
	// GitHubEnvironment names the Deployments' environment. Default "production".
	GitHubEnvironment string
	// GitHubPRMaxStorageBytes bounds the clone that pull requests are
	// checked in (<state-dir>/git-pulls): over it, the clone is emptied
	// before the next check. Default 1 GiB.
	GitHubPRMaxStorageBytes int64
	// EvalTimeout bounds the wall-clock time of one validation of a config
	// with .cue files (pushed commits and pull requests). Default "20s".
	EvalTimeout string
	// EvalMemory bounds the memory of one validation of a config with .cue
	// files ("512MiB", "1GiB"). Default "1GiB".
	EvalMemory string
	// Peers are the other replicas, nudged to re-check Git when this one
	// gets a webhook, rolls back or resumes: "dns:NAME:PORT" (every A/AAAA
	// record of a headless Service) or a comma-separated host:port list.
	// This replica leaves itself out. Empty: no fan-out.
	Peers string
	// Notifications is agent.yaml's notifications section (no flag; see
	// agent/notify_config.go). Nil: none.
	Notifications *notify.Config
}

// runFlag is one setting of agent run: its flag, its agent.yaml key, its
// default and help, and the runConfig field it sets. runFlags is the one
// list both the flags and agent.yaml are read by.
type runFlag struct {
	// name is the flag, without "--".
	name string
	// key is the agent.yaml key.
	key string
	// def is the default, of the target's type (string, int, int64, bool).
	def any
	// help is the flag's usage line.
	help string
	// target returns a pointer to the field of c the setting fills.
	target func(c *runConfig) any
}

// runFlags lists every setting of agent run, in --help order.
func runFlags() []runFlag {
	return []runFlag{
		{"repo", "repo", "", "config repository URL or local path (required)", func(c *runConfig) any { return &c.Repo }},
		{"branch", "branch", "main", "branch to track", func(c *runConfig) any { return &c.Branch }},
		{"path", "path", "", "config directory inside the repository (default: the root)", func(c *runConfig) any { return &c.Path }},
		{"gateway-socket", "gatewaySocket", "", "the gateway's admin socket (required)", func(c *runConfig) any { return &c.GatewaySocket }},
		{"state-dir", "stateDir", "", "directory for the clone, bundles, history and state (required)", func(c *runConfig) any { return &c.StateDir }},
		{"control-socket", "controlSocket", "", "control socket (default <state-dir>/agent.sock)", func(c *runConfig) any { return &c.ControlSocket }},
		{"webhook-addr", "webhookAddr", "", "address for POST /webhooks/{github,gitlab,gitea,bitbucket} and /metrics (default: off)", func(c *runConfig) any { return &c.WebhookAddr }},
		{"webhook-repo", "webhookRepo", "", "owner/name whose deliveries count (default: any)", func(c *runConfig) any { return &c.WebhookRepo }},
		{"webhook-max-body-bytes", "webhookMaxBodyBytes", int64(webhook.DefaultMaxBodyBytes), "largest webhook delivery accepted, in bytes (read before its signature is checked)", func(c *runConfig) any { return &c.WebhookMaxBodyBytes }},
		{"poll-interval", "pollInterval", "30s", "time between head checks (jittered ±10%)", func(c *runConfig) any { return &c.PollInterval }},
		{"heal-interval", "healInterval", "5s", "time between checks that the gateway runs the desired config (0s: only during syncs)", func(c *runConfig) any { return &c.HealInterval }},
		{"webhook-secret-file", "webhookSecretFile", "", "file with the webhook secret (else $" + webhook.SecretEnv + ")", func(c *runConfig) any { return &c.WebhookSecretFile }},
		{"git-max-fetch-bytes", "gitMaxFetchBytes", int64(gitsrc.DefaultMaxFetchBytes), "largest response of an HTTP(S) Git server (refs listing, fetched pack) and largest fetched pack over any transport, in bytes; a larger one fails the sync", func(c *runConfig) any { return &c.GitMaxFetchBytes }},
		{"git-token-file", "gitTokenFile", "", "file with an HTTPS token (else $" + tokenEnv + ")", func(c *runConfig) any { return &c.GitTokenFile }},
		{"ssh-key-file", "sshKeyFile", "", "SSH private key for ssh:// and git@ URLs", func(c *runConfig) any { return &c.SSHKeyFile }},
		{"push-token-file", "pushTokenFile", "", "file with an HTTPS token that may push the pin tags refs/tags/gitgate/<branch>/ (never the read token; without it or --push-ssh-key-file a rollback pins this replica only)", func(c *runConfig) any { return &c.PushTokenFile }},
		{"push-ssh-key-file", "pushSSHKeyFile", "", "SSH private key that may push the pin tags", func(c *runConfig) any { return &c.PushSSHKeyFile }},
		{"known-hosts-file", "knownHostsFile", "", "known_hosts for SSH (default ~/.ssh/known_hosts)", func(c *runConfig) any { return &c.KnownHostsFile }},
		{"verify-signatures", "verifySignatures", false, "apply only commits signed by --trusted-keys", func(c *runConfig) any { return &c.VerifySignatures }},
		{"trusted-keys", "trustedKeys", "", "armored PGP public keys or an SSH allowed_signers file for --verify-signatures", func(c *runConfig) any { return &c.TrustedKeys }},
		{"keep-bundles", "keepBundles", 100, "bundles of applied commits kept on disk", func(c *runConfig) any { return &c.KeepBundles }},
		{"log-level", "logLevel", "info", "debug, info, warn or error", func(c *runConfig) any { return &c.LogLevel }},
		{"github-repo", "githubRepo", "", "owner/name: report PR checks, comments and deploys to GitHub", func(c *runConfig) any { return &c.GitHubRepo }},
		{"github-token-file", "githubTokenFile", "", "file with a GitHub token (else $" + ghreport.TokenEnv + ")", func(c *runConfig) any { return &c.GitHubTokenFile }},
		{"github-url", "githubURL", "", "GitHub Enterprise Server URL (default github.com)", func(c *runConfig) any { return &c.GitHubURL }},
		{"github-app-id", "githubAppID", int64(0), "GitHub App id (with --github-installation-id and --github-app-key-file)", func(c *runConfig) any { return &c.GitHubAppID }},
		{"github-installation-id", "githubInstallationID", int64(0), "GitHub App installation id", func(c *runConfig) any { return &c.GitHubInstallationID }},
		{"github-app-key-file", "githubAppKeyFile", "", "GitHub App private key (PEM)", func(c *runConfig) any { return &c.GitHubAppKeyFile }},
		{"github-deploy-status", "githubDeployStatus", false, "post the gitgate/deploy status on applied commits", func(c *runConfig) any { return &c.GitHubDeployStatus }},
		{"github-deployments", "githubDeployments", false, "create a GitHub Deployment and its statuses for applied commits (instead of --github-deploy-status)", func(c *runConfig) any { return &c.GitHubDeployments }},
		{"github-environment", "githubEnvironment", "", "environment of --github-deployments (default \"production\")", func(c *runConfig) any { return &c.GitHubEnvironment }},
		{"github-pr-max-storage-bytes", "githubPRMaxStorageBytes", int64(1 << 30), "bound of the clone pull requests are checked in (state-dir/git-pulls, apart from the synced one); over it, it is emptied before the next check; fetches into it are capped at it too", func(c *runConfig) any { return &c.GitHubPRMaxStorageBytes }},
		{"eval-timeout", "evalTimeout", budget.Default.Timeout.String(), strings.ReplaceAll(evalTimeoutUsage, "`", ""), func(c *runConfig) any { return &c.EvalTimeout }},
		{"eval-memory", "evalMemory", budget.FormatBytes(budget.Default.Memory), strings.ReplaceAll(evalMemoryUsage, "`", ""), func(c *runConfig) any { return &c.EvalMemory }},
		{"peers", "peers", "", "peers to nudge on a webhook, rollback or resume: dns:NAME:PORT (a headless Service) or host:port,... (needs --webhook-addr)", func(c *runConfig) any { return &c.Peers }},
	}
}

// registerRun registers agent run's flags (--config and runFlags) on fs.
// resolve, called once fs is parsed, reads --config first and then lets
// the flags given on the command line win, and checks the result.
func registerRun(fs *pflag.FlagSet) (resolve func() (runConfig, error)) {
	configFile := fs.String("config", "", "agent.yaml with the same settings (flags win)")
	flags := runFlags()
	var flagCfg runConfig
	for _, f := range flags {
		switch p := f.target(&flagCfg).(type) {
		case *string:
			fs.StringVar(p, f.name, f.def.(string), f.help)
		case *int:
			fs.IntVar(p, f.name, f.def.(int), f.help)
		case *int64:
			fs.Int64Var(p, f.name, f.def.(int64), f.help)
		case *bool:
			fs.BoolVar(p, f.name, f.def.(bool), f.help)
		default:
			panic(fmt.Sprintf("agent run: flag --%s has a target of unsupported type %T", f.name, p))
		}
	}
	return func() (runConfig, error) {
		return resolveRunConfig(fs, *configFile, flags, &flagCfg)
	}
}

// parseRunConfig parses agent run's command line args (no positional
// arguments) into a checked runConfig.
func parseRunConfig(args []string, stderr io.Writer) (runConfig, error) {
	fs := pflag.NewFlagSet("agent run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := registerRun(fs)
	if err := fs.Parse(args); err != nil {
		return runConfig{}, err
	}
	if fs.NArg() > 0 {
		return runConfig{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return resolve()
}

func resolveRunConfig(fs *pflag.FlagSet, configFile string, flags []runFlag, flagCfg *runConfig) (runConfig, error) {
	var cfg runConfig
	for _, f := range flags {
		reflect.ValueOf(f.target(&cfg)).Elem().Set(reflect.ValueOf(f.def))
	}
	if configFile != "" {
		if err := readAgentYAML(configFile, flags, &cfg); err != nil {
			return runConfig{}, err
		}
	}
	// Flags given on the command line win over the file.
	byName := make(map[string]runFlag, len(flags))
	for _, f := range flags {
		byName[f.name] = f
	}
	fs.Visit(func(fl *pflag.Flag) {
		if f, ok := byName[fl.Name]; ok {
			reflect.ValueOf(f.target(&cfg)).Elem().Set(reflect.ValueOf(f.target(flagCfg)).Elem())
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
	if cfg.GitMaxFetchBytes < 1<<20 {
		return runConfig{}, fmt.Errorf("git max fetch bytes %d must be at least %d (1 MiB)", cfg.GitMaxFetchBytes, 1<<20)
	}
	if cfg.GitHubPRMaxStorageBytes < 1<<20 {
		return runConfig{}, fmt.Errorf("github pr max storage bytes %d must be at least %d (1 MiB)", cfg.GitHubPRMaxStorageBytes, 1<<20)
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
	// The fleet.
	if _, err := peers.NewSet(cfg.Peers, peers.SetOptions{}); err != nil {
		return runConfig{}, fmt.Errorf("--peers: %w", err)
	}
	if cfg.Peers != "" && cfg.WebhookAddr == "" {
		return runConfig{}, errors.New("--peers needs --webhook-addr: peers nudge each other there")
	}
	return cfg, nil
}

// readAgentYAML sets the fields of cfg that the agent.yaml file names,
// strictly: a key runFlags does not list, or a value of the wrong type, is an
// error naming the key.
func readAgentYAML(file string, flags []runFlag, cfg *runConfig) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading --config: %w", err)
	}
	// Strict: a key given twice is an error, as is anything but a mapping.
	var doc map[string]json.RawMessage
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	byKey := make(map[string]runFlag, len(flags))
	for _, f := range flags {
		byKey[f.key] = f
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := byKey[k]
		if !ok && k == notificationsKey { // a nested section, agent/notify_config.go
			if err := readNotifications(file, doc[k], cfg); err != nil {
				return err
			}
			continue
		}
		if !ok {
			return fmt.Errorf("%s: unknown field %q", file, k)
		}
		if err := json.Unmarshal(doc[k], f.target(cfg)); err != nil {
			return fmt.Errorf("%s: field %q: %w", file, k, err)
		}
	}
	return nil
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

func defineRun(fs *pflag.FlagSet) body {
	resolve := registerRun(fs)
	return func(ctx context.Context, _ []string, _, stderr io.Writer) int {
		cfg, err := resolve()
		if err != nil {
			fmt.Fprintf(stderr, "agent run: %v\n", err)
			return exitUsage
		}
		return runWith(ctx, cfg, stderr)
	}
}

func runWith(ctx context.Context, cfg runConfig, stderr io.Writer) int {
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
		// A PGP key ring or an SSH allowed_signers file, checked here.
		if trusted, err = gitsrc.ReadTrustedKeys(cfg.TrustedKeys); err != nil {
			return err
		}
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
	pushToken, err := readSecretFile(cfg.PushTokenFile, "")
	if err != nil {
		return fmt.Errorf("push token: %w", err)
	}
	if pushToken != "" && pushToken == token {
		return errors.New("--push-token-file holds the read token: give the agent a separate token for pushing pins, or none")
	}
	srcOpts := gitsrc.Options{
		URL: cfg.Repo, Branch: cfg.Branch, StorageDir: filepath.Join(cfg.StateDir, "git"),
		Token: token, SSHKeyFile: cfg.SSHKeyFile, KnownHostsFile: cfg.KnownHostsFile, TrustedKeys: trusted,
		PushMarks: pushToken != "" || cfg.PushSSHKeyFile != "" || gitsrc.IsLocal(cfg.Repo),
		PushToken: pushToken, PushSSHKeyFile: cfg.PushSSHKeyFile, MaxFetchBytes: cfg.GitMaxFetchBytes,
		OnRepair: logRepairs(logger, "git"),
	}
	src, err := gitsrc.Open(srcOpts)
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
	rep, err := newGitHubReporter(cfg, srcOpts, ev, logger)
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

	// Notifications (agent/notify_config.go).
	notifier, stopNotifier, err := startNotifier(cfg, reg, logger)
	if err != nil {
		return err
	}
	defer stopNotifier()
	// --- end notifications ---
	loop, err := syncer.New(syncer.Options{
		Source: src, Store: store, Gateway: gw, Path: cfg.Path, PollInterval: poll, HealInterval: heal, Validator: ev,
		Reporter: commitReporter, Metrics: syncer.NewMetrics(reg), Logger: logger,
		Notifier: notifier, // issue 16
	})
	if err != nil {
		return err
	}
	// The fleet: nudges to and from peers, GET /v1/replica.
	fl, err := newFleetParts(cfg, loop, gw, reg, logger)
	if err != nil {
		return err
	}
	defer fl.Close()
	// The automatic verdict after each apply (README "Automatic rollback");
	// an automatic rollback nudges the peers like a manual one.
	baker, err := safety.NewBaker(safety.Options{Gateway: gw, Rollbacker: fl.rollbacker(), Logger: logger})
	if err != nil {
		return err
	}
	loop.SetBaker(baker)
	bakeCtx, bakeCancel := context.WithCancel(ctx)
	bakeDone := make(chan struct{})
	go func() { defer close(bakeDone); baker.Run(bakeCtx) }()
	defer func() { bakeCancel(); <-bakeDone }()
	// The desired version, pin and rejected head as gauges, for
	// examples/monitoring's alerts (read from the status at scrape time).
	reg.MustRegister(statusmetrics.New(func() statusmetrics.Snapshot {
		return statusmetrics.FromStatus(loop.Status(context.Background()))
	}))

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
		hook.Register(mux) // POST /webhooks/{github,gitlab,gitea,bitbucket}
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		fl.register(mux) // POST /v1/nudge, GET /v1/replica
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

	logger.Info().Str("repo", src.Location()).Str("branch", cfg.Branch).Str("path", cfg.Path).
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
// Pull requests are checked in a clone of their own (pullRequestSource),
// opened from the synced clone's options srcOpts.
func newGitHubReporter(cfg runConfig, srcOpts gitsrc.Options, ev *budget.Evaluator, logger zerolog.Logger) (*ghreport.Reporter, error) {
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
	prSrc, err := pullRequestSource(cfg.StateDir, srcOpts, cfg.GitHubPRMaxStorageBytes, logger)
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(cfg.GitHubRepo, "/")
	return ghreport.New(ghreport.Options{
		Client: gc, Owner: owner, Repo: name, BaseBranch: cfg.Branch, ConfigPath: cfg.Path,
		Evaluate: prEvaluator(prSrc, cfg.Path, ev, cfg.GitHubPRMaxStorageBytes, logger), DeployStatuses: cfg.GitHubDeployStatus,
		Deployments: cfg.GitHubDeployments, Environment: cfg.GitHubEnvironment,
		Logger: logger.With().Str("component", "ghreport").Logger(),
	})
}

// pullRequestSource opens the clone that pull requests are checked in,
// <state-dir>/git-pulls: the synced clone's repository and credentials,
// never pushing. A pull request's head comes from anyone's fork, and
// go-git never drops an object, so the heads are kept out of the clone
// that is synced, applied and rolled back from, and this one is emptied
// when it grows past its bound maxStorage (prEvaluator). A fetch into it
// is capped at that bound too, when it is lower than the synced clone's
// cap: a head that would not fit is not fetched.
func pullRequestSource(stateDir string, srcOpts gitsrc.Options, maxStorage int64, logger zerolog.Logger) (*gitsrc.Source, error) {
	o := srcOpts
	o.StorageDir = filepath.Join(stateDir, "git-pulls")
	if o.MaxFetchBytes <= 0 || maxStorage < o.MaxFetchBytes {
		o.MaxFetchBytes = maxStorage
	}
	o.TrustedKeys = "" // pull requests are validated, not verified
	o.PushMarks, o.PushToken, o.PushSSHKeyFile = false, "", ""
	o.OnRepair = logRepairs(logger, "git-pulls")
	return gitsrc.Open(o)
}

// logRepairs is a clone's gitsrc.Options.OnRepair: it logs what was
// repaired in storage, the clone's directory under the state directory.
func logRepairs(logger zerolog.Logger, storage string) func([]string) {
	return func(repairs []string) {
		logger.Warn().Str("storage", storage).Strs("repairs", repairs).Msg("repaired the git storage, left torn by a crash or a failed write; the next fetch restores what was removed")
	}
}

// prEvaluator validates a pull request's head with the same loader and
// budget as a sync and diffs it against the base, reading both from src,
// the pull requests' clone (fetching refs/pull/N/head when the head is not
// local yet). Before each check the clone is emptied when it holds more
// than maxStorage bytes.
func prEvaluator(src *gitsrc.Source, path string, eval *budget.Evaluator, maxStorage int64, logger zerolog.Logger) ghreport.Evaluator {
	return func(ctx context.Context, pr ghreport.PullRequest) (ghreport.Evaluation, error) {
		reset, err := src.ResetOver(maxStorage)
		if err != nil {
			return ghreport.Evaluation{}, err
		}
		if reset {
			logger.Info().Int64("max_bytes", maxStorage).Msg("emptied the pull requests' clone, grown past its bound by the heads fetched into it; the next fetch clones again")
		}
		head := pr.HeadSHA
		if head == "" || !src.HasCommit(head) {
			h, err := src.FetchRef(ctx, fmt.Sprintf("refs/pull/%d/head", pr.Number))
			if err != nil {
				return ghreport.Evaluation{}, err
			}
			head = h
		}
		ev := ghreport.Evaluation{HeadSHA: head}
		headRes, err := source.Validate(ctx, src, head, path, eval, load.Limits{})
		if err != nil || len(headRes.Diagnostics) > 0 {
			ev.Diagnostics = headRes.Diagnostics
			return ev, err
		}
		base := pr.BaseSHA
		if base == "" || !src.HasCommit(base) {
			if base, _, err = src.Update(ctx); err != nil {
				return ev, err
			}
		}
		ev.BaseSHA = base
		baseRes, err := source.Validate(ctx, src, base, path, eval, load.Limits{})
		if err != nil {
			return ev, err
		}
		// An invalid base has no config: the plan shows everything as new.
		plan := diff.Compute(baseRes.Config, headRes.Config)
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
