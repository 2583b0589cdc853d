// Command gateway is gitgate's API gateway: it serves HTTP traffic from the
// config bundle the agent hands it over the admin socket, and from its
// last-known-good bundle after a restart.
//
//	gateway [run] [flags]
//	gateway version
//
// The command line is built with github.com/spf13/cobra, as the agent's is.
//
//go:generate go test -run ^TestREADMECLIReference$ -update-readme .
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/gitgate/gitgate/gateway/internal/cache"
	"github.com/gitgate/gitgate/gateway/internal/serve"
	"github.com/gitgate/gitgate/gateway/internal/tracing"
	"github.com/gitgate/gitgate/schemas/buildinfo"
	"github.com/gitgate/gitgate/schemas/cliargs"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=..."; "dev" means not set.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, level, exit := parseFlags(args, stdout, stderr)
	if exit >= 0 {
		return exit
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	logger := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve.Run(ctx, cfg, logger); err != nil {
		logger.Error().Err(err).Msg("gateway failed")
		return 1
	}
	return 0
}

// gatewayLong is the gateway's description in --help and the README.
const gatewayLong = `gitgate's API gateway: it serves HTTP traffic on --listen from the config
bundle the agent hands it over the admin socket (--admin-socket), and from its
last-known-good bundle in --state-dir after a restart.

Exit codes: 0 stopped cleanly (or --help, --version), 1 failed while
serving, 2 usage error (a bad flag or value).`

// flagValues are the gateway's flags that need checking or converting
// before they become a serve.Config.
type flagValues struct {
	socketMode, trusted, observeHosts, logLevel string
	printVersion, redact                        bool
}

// newRootCmd builds the gateway's command tree. When the command line asks
// to serve, it calls serveWith with the checked config; it returns the exit
// code of anything else through codeError.
func newRootCmd(stdout, stderr io.Writer, serveWith func(serve.Config, zerolog.Level) error) *cobra.Command {
	var (
		cfg serve.Config
		fv  flagValues
	)
	start := func(cmd *cobra.Command, _ []string) error {
		if fv.printVersion {
			fmt.Fprintln(stdout, buildinfo.Read(version).String("gateway"))
			return nil
		}
		level, err := checkFlags(&cfg, fv)
		if err != nil {
			fmt.Fprintf(stderr, "gateway: %v\n", err)
			return codeError(2)
		}
		return serveWith(cfg, level)
	}
	root := &cobra.Command{
		Use:   "gateway [flags]",
		Short: "gitgate's API gateway",
		Long:  gatewayLong,
		Example: `  gateway --listen :8080 --admin-socket /run/gitgate/admin.sock --state-dir /var/lib/gitgate/gateway

  # Kubernetes: a read-only status port, and 5s of 503 on /readyz before draining
  gateway --observe-addr :9091 --shutdown-delay 5s`,
		Args:          noArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          start,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	fset := root.PersistentFlags()
	fset.StringVar(&fv.socketMode, "admin-socket-mode", "0600", "file mode of the admin socket, octal")
	fset.StringVar(&fv.trusted, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
	fset.StringVar(&fv.observeHosts, "observe-allowed-hosts", "", "comma-separated Host names served on --observe-addr besides IP literals, localhost and its own host (others get 421, against DNS rebinding); * for any")
	fset.StringVar(&fv.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fset.BoolVar(&fv.printVersion, "version", false, "print the version, commit and Go version, and exit")
	fset.BoolVar(&fv.redact, "observe-redact-secrets", true, "leave API-key hashes out of GET /v1/bundle on --observe-addr (the admin socket serves them always)")
	fset.StringVar(&cfg.Listen, "listen", ":8080", "data plane address")
	fset.StringVar(&cfg.AdminSocket, "admin-socket", serve.DefaultAdminSocket(), "admin API Unix socket path")
	fset.StringVar(&cfg.StateDir, "state-dir", serve.DefaultStateDir(), "directory of the last-known-good bundle; empty: none")
	fset.BoolVar(&cfg.Watch, "watch", false, "serve GET /v1/watch (long-poll and server-sent events)")
	fset.StringVar(&cfg.DNSResolver, "dns-resolver", "", "DNS server (host:port) asked for the members of dns:// and srv:// upstream targets; empty: the servers of /etc/resolv.conf")
	fset.StringVar(&cfg.ObserveAddr, "observe-addr", "", "TCP address for the read-only admin routes; empty: none")
	fset.BoolVar(&cfg.AccessLog, "access-log", false, "log one line per request: proxied, refused by a policy or unrouted")
	fset.Int64Var(&cfg.CacheMaxBytes, "cache-max-bytes", cache.DefaultMaxBytes, "memory bound of the response cache of all routes together, in bytes; the least recently used entries go first")
	fset.BoolVar(&cfg.H2C, "h2c", false, "accept HTTP/2 without TLS on --listen")
	fset.StringVar(&cfg.HTTP1Server, "http1-server", serve.DefaultHTTP1Server, "server of HTTP/1.1 on --listen: fasthttp or net (Go's net/http); HTTP/2 stays on net/http, chosen by ALPN over TLS; with --h2c net/http serves both")
	fset.StringVar(&cfg.TLS.Cert, "tls-cert", "", "TLS certificate file for --listen (with --tls-key); the default certificate; reloaded when it changes")
	fset.StringVar(&cfg.TLS.Key, "tls-key", "", "TLS key file for --listen (with --tls-cert)")
	fset.StringVar(&cfg.TLS.Dir, "tls-dir", "", "directory of more certificates for --listen chosen by SNI: NAME.crt with NAME.key, in it and in its subdirectories (cert-manager Secret volumes: SUB/tls.crt, SUB/tls.key); reloaded when they change")
	fset.StringVar(&cfg.TLS.ClientCA, "client-ca", "", "PEM bundle of the CAs of client certificates on --listen (mTLS); empty: none")
	fset.StringVar(&cfg.TLS.ClientAuth, "client-auth", serve.ClientAuthRequired, "with --client-ca: required (no valid client certificate, no handshake) or optional (a certificate sent must verify)")
	fset.StringVar(&cfg.ClientCertHeader, "client-cert-header", serve.DefaultClientCertHeader, "request header set to a verified client certificate's subject; every client-sent spelling of it is removed; empty: none")
	fset.StringVar(&cfg.ObserveTLS.Cert, "observe-tls-cert", "", "TLS certificate file for --observe-addr (with --observe-tls-key)")
	fset.StringVar(&cfg.ObserveTLS.Key, "observe-tls-key", "", "TLS key file for --observe-addr (with --observe-tls-cert)")
	fset.StringVar(&cfg.ObserveTLS.Dir, "observe-tls-dir", "", "directory of certificates for --observe-addr, as --tls-dir")
	fset.StringVar(&cfg.ObserveTLS.ClientCA, "observe-client-ca", "", "PEM bundle of the CAs of client certificates on --observe-addr; when set, a client certificate is required")
	fset.DurationVar(&cfg.TLSReloadInterval, "tls-reload-interval", 5*time.Second, "how often the certificate files are read for changes")
	fset.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /readyz answering 503 before draining (e.g. 5s on Kubernetes)")
	fset.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", serve.DefaultShutdownTimeout, "how long to drain in-flight requests on SIGTERM")
	fset.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "OTLP/HTTP URL to export one server span per request to (e.g. http://collector:4318; /v1/traces is added to a URL without a path); empty: no spans")
	fset.Float64Var(&cfg.TraceSampling, "trace-sampling", 1, "with --otlp-endpoint: share of new traces exported, 0 to 1; a request's traceparent decides for its own trace")
	fset.StringArrayVar(&cfg.OTLPHeaders, "otlp-header", nil, "with --otlp-endpoint: header sent with every export, NAME=env:VAR or NAME=file:PATH (repeatable; the value is never logged)")
	root.AddCommand(&cobra.Command{
		Use:     "run [flags]",
		Short:   "Serve (the same as gateway without a command)",
		Long:    "Serves: the same as running gateway without a command, with the same flags.",
		Example: "  gateway run --listen :8080",
		Args:    noArgs,
		RunE:    start,
	}, &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version",
		Long:    "Prints the module version (a tag when installed with go install, a pseudo-version such as v0.0.0-20261206044834-63b749fa3088 when built in a Git checkout, \"(devel)\" when built without VCS information, or the -X main.version value), the commit it was built from (\", modified\" with uncommitted changes) and the Go version.",
		Example: "  gateway version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(stdout, buildinfo.Read(version).String("gateway"))
			return nil
		},
	})
	return root
}

// codeError carries an exit code through cobra.
type codeError int

func (e codeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// execute runs the command line args; serveWith is called when it asks to
// serve. It returns the exit code.
func execute(args []string, stdout, stderr io.Writer, serveWith func(serve.Config, zerolog.Level) error) int {
	root := newRootCmd(stdout, stderr, serveWith)
	if err := cliargs.CheckDashes(root, args); err != nil {
		fmt.Fprintf(stderr, "gateway: %v\n", err)
		return 2
	}
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ce codeError
	if errors.As(err, &ce) {
		return int(ce)
	}
	fmt.Fprintf(stderr, "gateway: %v\nRun 'gateway --help' for usage.\n", err)
	return 2
}

// parseFlags turns the command line into a serve.Config and a log level.
// exit is -1 when the gateway should run, else the code to exit with at
// once (version, --help, a bad flag).
func parseFlags(args []string, stdout, stderr io.Writer) (cfg serve.Config, level zerolog.Level, exit int) {
	serving := false
	exit = execute(args, stdout, stderr, func(c serve.Config, l zerolog.Level) error {
		cfg, level, serving = c, l, true
		return nil
	})
	if serving && exit == 0 {
		return cfg, level, -1
	}
	return cfg, level, exit
}

// checkFlags fills the fields of cfg that fv's flags set, and checks them.
func checkFlags(cfg *serve.Config, fv flagValues) (zerolog.Level, error) {
	mode, err := strconv.ParseUint(fv.socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return 0, fmt.Errorf("--admin-socket-mode %q is not an octal mode such as 0600", fv.socketMode)
	}
	cfg.AdminSocketMode = fs.FileMode(mode)
	if cfg.CacheMaxBytes <= 0 {
		return 0, fmt.Errorf("--cache-max-bytes %d must be positive", cfg.CacheMaxBytes)
	}
	cfg.ObserveShowSecrets = !fv.redact
	if cfg.TrustedProxies, err = serve.ParsePrefixes(fv.trusted); err != nil {
		return 0, fmt.Errorf("--trusted-proxies: %w", err)
	}
	for h := range strings.SplitSeq(fv.observeHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.ObserveAllowedHosts = append(cfg.ObserveAllowedHosts, h)
		}
	}
	if a := cfg.TLS.ClientAuth; a != serve.ClientAuthRequired && a != serve.ClientAuthOptional {
		return 0, fmt.Errorf("--client-auth %q is not required or optional", a)
	}
	level, err := zerolog.ParseLevel(fv.logLevel)
	if err != nil {
		return 0, fmt.Errorf("--log-level: %w", err)
	}
	if cfg.OTLPEndpoint != "" {
		if _, err := tracing.CheckEndpoint(cfg.OTLPEndpoint); err != nil {
			return 0, fmt.Errorf("--otlp-endpoint: %w", err)
		}
	} else if len(cfg.OTLPHeaders) > 0 {
		return 0, errors.New("--otlp-header needs --otlp-endpoint")
	}
	if err := tracing.CheckSampling(cfg.TraceSampling); err != nil {
		return 0, fmt.Errorf("--trace-sampling: %w", err)
	}
	cfg.Version = buildinfo.Read(version).Version
	return level, nil
}
