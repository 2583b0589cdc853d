// Command gateway is gitgate's API gateway: it serves HTTP traffic from the
// config bundle the agent hands it over the admin socket, and from its
// last-known-good bundle after a restart.
//
//	gateway [run] [flags]
//	gateway version
package main

import (
	"context"
	"errors"
	"flag"
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

	"github.com/gitgate/gitgate/gateway/internal/serve"
)

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

// parseFlags turns the command line into a serve.Config and a log level.
// exit is -1 when the gateway should run, else the code to exit with at
// once (version, --help, a bad flag).
func parseFlags(args []string, stdout, stderr io.Writer) (cfg serve.Config, level zerolog.Level, exit int) {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintf(stdout, "gateway %s\n", version)
			return cfg, level, 0
		case "run":
			args = args[1:]
		}
	}
	fset := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var (
		socketMode   = fset.String("admin-socket-mode", "0600", "file mode of the admin socket, octal")
		trusted      = fset.String("trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-* headers are trusted")
		observeHosts = fset.String("observe-allowed-hosts", "", "comma-separated Host names served on --observe-addr besides IP literals, localhost and its own host (others get 421, against DNS rebinding); * for any")
		logLevel     = fset.String("log-level", "info", "log level: debug, info, warn, error")
		printVersion = fset.Bool("version", false, "print the version and exit")
		redact       = fset.Bool("observe-redact-secrets", true, "leave API-key hashes out of GET /v1/bundle on --observe-addr (the admin socket serves them always)")
	)
	fset.StringVar(&cfg.Listen, "listen", ":8080", "data plane address")
	fset.StringVar(&cfg.AdminSocket, "admin-socket", serve.DefaultAdminSocket(), "admin API Unix socket path")
	fset.StringVar(&cfg.StateDir, "state-dir", serve.DefaultStateDir(), "directory of the last-known-good bundle; empty: none")
	fset.BoolVar(&cfg.Watch, "watch", false, "serve GET /v1/watch (long-poll and server-sent events)")
	fset.StringVar(&cfg.ObserveAddr, "observe-addr", "", "TCP address for the read-only admin routes; empty: none")
	fset.BoolVar(&cfg.AccessLog, "access-log", false, "log one line per request: proxied, refused by a policy or unrouted")
	fset.BoolVar(&cfg.H2C, "h2c", false, "accept HTTP/2 without TLS on --listen")
	fset.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file for --listen (with --tls-key)")
	fset.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key file for --listen (with --tls-cert)")
	fset.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /readyz answering 503 before draining (e.g. 5s on Kubernetes)")
	fset.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", serve.DefaultShutdownTimeout, "how long to drain in-flight requests on SIGTERM")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, level, 0
		}
		return cfg, level, 2
	}
	if *printVersion {
		fmt.Fprintf(stdout, "gateway %s\n", version)
		return cfg, level, 0
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway: unexpected argument %q\n", fset.Arg(0))
		return cfg, level, 2
	}
	mode, err := strconv.ParseUint(*socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		fmt.Fprintf(stderr, "gateway: --admin-socket-mode %q is not an octal mode such as 0600\n", *socketMode)
		return cfg, level, 2
	}
	cfg.AdminSocketMode = fs.FileMode(mode)
	cfg.ObserveShowSecrets = !*redact
	if cfg.TrustedProxies, err = serve.ParsePrefixes(*trusted); err != nil {
		fmt.Fprintf(stderr, "gateway: --trusted-proxies: %v\n", err)
		return cfg, level, 2
	}
	for h := range strings.SplitSeq(*observeHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.ObserveAllowedHosts = append(cfg.ObserveAllowedHosts, h)
		}
	}
	level, err = zerolog.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: --log-level: %v\n", err)
		return cfg, level, 2
	}
	cfg.Version = version
	return cfg, level, -1
}
