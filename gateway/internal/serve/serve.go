package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/net/http/httpguts"

	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/gateway/internal/h1"
	"github.com/gitgate/gitgate/gateway/internal/lkg"
	"github.com/gitgate/gitgate/gateway/internal/runtime"
	"github.com/gitgate/gitgate/gateway/internal/tracing"
	gwupstream "github.com/gitgate/gitgate/gateway/internal/upstream"
)

// Log field names used by this package.
const (
	logComponent = "component"
	logAddr      = "addr"
	logPath      = "path"
	logVersion   = "version"
	logAside     = "movedTo"
	logDelay     = "delay"
)

// DefaultShutdownTimeout bounds the drain of in-flight requests.
const DefaultShutdownTimeout = 30 * time.Second

// Config is the validated configuration of a gateway process.
type Config struct {
	// Listen is the data plane's TCP address. Default ":8080".
	Listen string
	// AdminSocket is the admin API's Unix socket path. Default
	// DefaultAdminSocket().
	AdminSocket string
	// AdminSocketMode is the socket's file mode. Default 0600.
	AdminSocketMode fs.FileMode
	// StateDir holds the last-known-good bundle. Empty: nothing persisted,
	// nothing restored.
	StateDir string
	// TrustedProxies are peers whose X-Forwarded-* headers are kept.
	TrustedProxies []netip.Prefix
	// DNSResolver is the DNS server (host:port) asked for the members of
	// dns:// and srv:// upstream targets. Empty: the servers of
	// /etc/resolv.conf.
	DNSResolver string
	// Watch enables GET /v1/watch.
	Watch bool
	// ObserveAddr, when set, serves the read-only admin routes on TCP.
	ObserveAddr string
	// ObserveAllowedHosts are the Host names served on ObserveAddr besides
	// IP literals, localhost and ObserveAddr's own host name; others get
	// 421 (DNS rebinding). "*" allows any.
	ObserveAllowedHosts []string
	// ObserveShowSecrets serves API-key hashes in GET /v1/bundle on
	// ObserveAddr. Default false: they are replaced, since that address is
	// reachable over the network; the admin socket serves them always.
	ObserveShowSecrets bool
	// AccessLog logs one line per request, proxied or not.
	AccessLog bool
	// CacheMaxBytes bounds the response cache of all routes together.
	// 0: cache.DefaultMaxBytes.
	CacheMaxBytes int64
	// H2C accepts HTTP/2 without TLS (prior knowledge) on Listen.
	H2C bool
	// HTTP1Server is the server of HTTP/1.1 on Listen: HTTP1Net or
	// HTTP1Fast. Default DefaultHTTP1Server. HTTP/2 is net/http's always,
	// and with H2C net/http serves HTTP/1.1 too.
	HTTP1Server string
	// TLS, when Enabled, serves Listen over TLS (HTTP/2 and HTTP/1.1 by
	// ALPN) with certificates chosen by SNI and reloaded when their files
	// change, and optionally verifies client certificates.
	TLS ListenerTLS
	// ObserveTLS is the same for ObserveAddr (HTTP/1.1).
	ObserveTLS ListenerTLS
	// TLSReloadInterval is how often certificate files are read for
	// changes. Default certs.DefaultInterval.
	TLSReloadInterval time.Duration
	// ClientCertHeader is the request header set to a verified client
	// certificate's subject on Listen; every client-sent spelling of it is
	// removed from every request. Empty: none.
	ClientCertHeader string
	// ShutdownDelay is how long the listeners keep serving after ctx ends,
	// with /readyz answering 503 and keep-alives off, before the graceful
	// shutdown starts: the time a load balancer (Kubernetes endpoints,
	// kube-proxy, an ingress) needs to stop sending new connections.
	// Default 0: shut down at once.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the drain on shutdown. Default 30s.
	ShutdownTimeout time.Duration
	// OTLPEndpoint, when set, exports one server span per request over
	// OTLP/HTTP (protobuf) to this URL (/v1/traces added when it has no
	// path). Empty: no spans, at no cost.
	OTLPEndpoint string
	// OTLPHeaders are sent with every export, each NAME=env:VAR or
	// NAME=file:PATH; the values are never logged.
	OTLPHeaders []string
	// TraceSampling is the share (0 to 1) of new traces exported; a
	// request's traceparent decides for its own trace (parent-based).
	TraceSampling float64
	// Version is the build's version, exported as gitgate_gateway_build_info.
	Version string
	// OnListening, when set, is called once every listener is open with the
	// data plane's address and the observe address (nil when none). Tests
	// and embedders use it with ":0" addresses.
	OnListening func(data, observe net.Addr)
}

// DefaultAdminSocket is $XDG_RUNTIME_DIR/gitgate/admin.sock when that
// variable is set, else /run/gitgate/admin.sock.
func DefaultAdminSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "gitgate", "admin.sock")
	}
	return "/run/gitgate/admin.sock"
}

// DefaultStateDir is $STATE_DIRECTORY (set by systemd's StateDirectory=)
// when set, else /var/lib/gitgate.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0]
	}
	return "/var/lib/gitgate"
}

// ParsePrefixes parses a comma-separated list of CIDRs; a bare address is a
// single-host prefix. Empty input gives nil.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not a CIDR: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (c *Config) defaults() error {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.AdminSocket == "" {
		c.AdminSocket = DefaultAdminSocket()
	}
	if c.AdminSocketMode == 0 {
		c.AdminSocketMode = admin.DefaultSocketMode
	}
	if c.AdminSocketMode&^0o777 != 0 {
		return fmt.Errorf("admin socket mode %o has bits beyond 0777", c.AdminSocketMode)
	}
	if c.ShutdownDelay < 0 {
		return fmt.Errorf("shutdown delay %v is negative", c.ShutdownDelay)
	}
	switch c.HTTP1Server {
	case "":
		c.HTTP1Server = DefaultHTTP1Server
	case HTTP1Net, HTTP1Fast:
	default:
		return fmt.Errorf("--http1-server %q is not %s or %s", c.HTTP1Server, HTTP1Net, HTTP1Fast)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if err := c.TLS.check(""); err != nil {
		return err
	}
	if err := c.ObserveTLS.check("observe-"); err != nil {
		return err
	}
	if c.ObserveTLS.Enabled() && c.ObserveAddr == "" {
		return errors.New("--observe-tls-* need --observe-addr")
	}
	if c.ClientCertHeader != "" && !httpguts.ValidHeaderFieldName(c.ClientCertHeader) {
		return fmt.Errorf("--client-cert-header %q is not a header name", c.ClientCertHeader)
	}
	if c.TLSReloadInterval < 0 {
		return fmt.Errorf("TLS reload interval %v is negative", c.TLSReloadInterval)
	}
	if c.OTLPEndpoint != "" {
		if _, err := tracing.CheckEndpoint(c.OTLPEndpoint); err != nil {
			return fmt.Errorf("--otlp-endpoint: %w", err)
		}
	}
	if err := tracing.CheckSampling(c.TraceSampling); err != nil {
		return fmt.Errorf("--trace-sampling: %w", err)
	}
	return nil
}

// Run serves until ctx ends or a listener fails, then shuts down: it stops
// accepting, drains in-flight requests for at most ShutdownTimeout, ends
// watch streams and closes the engine.
func Run(ctx context.Context, cfg Config, logger zerolog.Logger) error {
	if err := cfg.defaults(); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	lg := logger.With().Str(logComponent, "gateway").Logger()
	var resolver *gwupstream.Resolver
	if cfg.DNSResolver != "" {
		r, err := gwupstream.NewResolver(cfg.DNSResolver)
		if err != nil {
			return fmt.Errorf("gateway config: %w", err)
		}
		resolver = r
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gitgate_gateway_build_info",
		Help: "Always 1; the label is the gateway's build version.",
	}, []string{"version"})
	buildInfo.WithLabelValues(cfg.Version).Set(1)
	reg.MustRegister(buildInfo)

	sp, err := startSpans(ctx, &cfg, reg, logger)
	if err != nil {
		return err
	}
	defer sp.stop(lg) // an early return; on shutdown, after the drain below

	eng := runtime.New(runtime.Options{
		TrustedProxies: cfg.TrustedProxies,
		Registry:       reg,
		Logger:         logger,
		AccessLog:      cfg.AccessLog,
		Tracer:         sp.tracer(),
		Resolver:       resolver,
		CacheMaxBytes:  cfg.CacheMaxBytes,
	})
	defer eng.Close()

	var store *lkg.Store
	adminOpts := admin.Options{
		Runtime:    eng,
		Health:     healthOf(eng),
		Gatherer:   reg,
		Registerer: reg,
		Logger:     logger,
		Watch:      cfg.Watch,

		ObserveAllowedHosts: observeHosts(cfg.ObserveAddr, cfg.ObserveAllowedHosts),
		ObserveShowSecrets:  cfg.ObserveShowSecrets,
	}
	if cfg.StateDir != "" {
		var err error
		if store, err = lkg.Open(cfg.StateDir); err != nil {
			return err
		}
		adminOpts.Store = store
	} else {
		lg.Warn().Msg("no state directory: applied bundles are not kept across restarts")
	}
	adm, err := admin.New(adminOpts)
	if err != nil {
		return err
	}
	if store != nil {
		restore(lg, store, adm)
	}

	tm := newTLSMetrics(reg)
	tctx, stopTLS := context.WithCancel(ctx)
	defer stopTLS()
	dataTLS, dataCerts, err := tlsConfig(tctx, "data", cfg.TLS, dataProtos(cfg.H2C), cfg.TLSReloadInterval, tm, logger)
	if err != nil {
		return err
	}
	if dataCerts != nil {
		defer dataCerts.Close()
	}
	observeTLS, observeCerts, err := tlsConfig(tctx, "observe", cfg.ObserveTLS, []string{"http/1.1"}, cfg.TLSReloadInterval, tm, logger)
	if err != nil {
		return err
	}
	if observeCerts != nil {
		defer observeCerts.Close()
	}

	dataL, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	adminL, err := admin.ListenUnix(cfg.AdminSocket, cfg.AdminSocketMode)
	if err != nil {
		_ = dataL.Close()
		return err
	}
	var observeL net.Listener
	if cfg.ObserveAddr != "" {
		if observeL, err = net.Listen("tcp", cfg.ObserveAddr); err != nil {
			_ = dataL.Close()
			_ = adminL.Close()
			return fmt.Errorf("listening on observe address %s: %w", cfg.ObserveAddr, err)
		}
		if observeTLS != nil {
			observeL = tls.NewListener(observeL, observeTLS)
		}
	}

	var handler http.Handler = eng
	if cfg.ClientCertHeader != "" {
		handler = withClientSubject(eng, cfg.ClientCertHeader)
	}
	data := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(logger.With().Str(logComponent, "data-http").Logger(), "", 0),
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		data.Protocols = &p
	}
	data.TLSConfig = dataTLS
	dp := &dataPlane{net: data, tls: dataTLS, errs: data.ErrorLog}
	if useFast(&cfg) {
		dp.fast = h1.New(h1.Options{
			Handler:           handler,
			ReadHeaderTimeout: data.ReadHeaderTimeout,
			IdleTimeout:       data.IdleTimeout,
			ErrorLog:          log.New(logger.With().Str(logComponent, "data-http1").Logger(), "", 0),
		})
	}

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		err := dp.serve(dataL)
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving data plane on %s: %w", dataL.Addr(), err)
		}
	})
	wg.Go(func() {
		if err := adm.ServeAdmin(adminL); err != nil {
			errc <- err
		}
	})
	if observeL != nil {
		wg.Go(func() {
			if err := adm.ServeObserve(observeL); err != nil {
				errc <- err
			}
		})
		lg.Info().Str(logAddr, observeL.Addr().String()).Bool("tls", observeTLS != nil).Bool("mtls", cfg.ObserveTLS.ClientCA != "").Msg("serving read-only admin routes")
	}
	lg.Info().Str(logPath, cfg.AdminSocket).Msg("serving admin socket")
	lg.Info().Str(logAddr, dataL.Addr().String()).Bool("tls", dataTLS != nil).Bool("mtls", cfg.TLS.ClientCA != "").Bool("h2c", cfg.H2C).
		Str("http1", dp.http1()).Msg("serving data plane")

	if cfg.OnListening != nil {
		var oa net.Addr
		if observeL != nil {
			oa = observeL.Addr()
		}
		cfg.OnListening(dataL.Addr(), oa)
	}

	var runErr error
	select {
	case <-ctx.Done():
		runErr = delayShutdown(lg, cfg.ShutdownDelay, adm, dp, errc)
		lg.Info().Msg("shutting down: draining in-flight requests")
	case runErr = <-errc:
		lg.Error().Err(runErr).Msg("shutting down after a listener failed")
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := dp.shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("draining data plane: %w", err), dp.close())
	}
	if err := adm.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping admin server: %w", err))
	}
	wg.Wait()
	if err := eng.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing engine: %w", err))
	}
	sp.stop(lg) // every request has ended: its span is queued
	if runErr != nil {
		return runErr
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	lg.Info().Msg("stopped")
	return nil
}

// dataProtos are the ALPN protocols of the data plane's TLS: HTTP/2 and
// HTTP/1.1, as http.Server.ServeTLS offers them, unless --h2c limits the
// server's protocols to HTTP/1.1 and unencrypted HTTP/2.
func dataProtos(h2c bool) []string {
	if h2c {
		return []string{"http/1.1"}
	}
	return []string{"h2", "http/1.1"}
}

// delayShutdown keeps serving for delay with /readyz answering 503 and
// keep-alives off, so that kept-alive clients are told Connection: close and
// reconnect through the load balancer, which by then has taken this process
// out of rotation. A listener failure ends the delay early and is returned.
func delayShutdown(lg zerolog.Logger, delay time.Duration, adm *admin.Server, data *dataPlane, errc <-chan error) error {
	if delay <= 0 {
		return nil
	}
	adm.Drain()
	data.setKeepAlives(false)
	lg.Info().Dur(logDelay, delay).Msg("shutting down: not ready, serving for the shutdown delay")
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-errc:
		lg.Error().Err(err).Msg("a listener failed during the shutdown delay")
		return err
	}
}

// observeHosts is the Host allowlist of the observe address: the names
// given plus the address's own host when it is a name (an IP literal is
// always allowed).
func observeHosts(addr string, names []string) []string {
	out := slices.Clone(names)
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			out = append(out, host)
		}
	}
	return out
}

// restore applies the last-known-good bundle, if any. A file that cannot
// be used is reported and moved aside; the gateway then waits for the agent.
func restore(lg zerolog.Logger, store *lkg.Store, adm *admin.Server) {
	b, err := store.Load()
	if errors.Is(err, lkg.ErrNotFound) {
		lg.Info().Str(logPath, store.Path()).Msg("no last-known-good bundle; waiting for the agent")
		return
	}
	if err == nil {
		if err = adm.Restore(b); err == nil {
			return
		}
	} else {
		adm.RecordRejected(nil, err)
	}
	ev := lg.Error().Err(err).Str(logPath, store.Path())
	if b != nil {
		ev = ev.Str(logVersion, b.Version)
	}
	aside, qerr := store.Quarantine(time.Now())
	if qerr != nil {
		ev.AnErr("quarantineError", qerr).Msg("last-known-good bundle unusable and could not be moved aside; ignored")
		return
	}
	ev.Str(logAside, aside).Msg("last-known-good bundle unusable; moved aside and ignored")
}

// healthOf hands the engine's status, already in the admin API's types, to
// the admin server.
func healthOf(eng *runtime.Engine) func() admin.Health {
	return func() admin.Health {
		st := eng.Status()
		return admin.Health{Routes: st.Routes, Upstreams: st.Upstreams, Breakers: st.Breakers, Traffic: st.Traffic, JWKS: st.JWKS, Failover: st.Failover, Cache: st.Cache,
			Discovery: st.Discovery}
	}
}
