package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// Log field names used by this package.
const (
	logComponent   = "component"
	logVersion     = "version"
	logDigest      = "digest"
	logProblems    = "problems"
	logRemote      = "remote"
	logMaxWatchers = "maxWatchers"
	logIfMatch     = "ifMatch"
	logRunning     = "running"
)

// Defaults of Options.
const (
	DefaultMaxBundleBytes    = 64 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultHeartbeat         = 15 * time.Second
	DefaultEventBuffer       = 256
	DefaultWatchTimeout      = 30 * time.Second
	DefaultMaxWatchTimeout   = 5 * time.Minute
	DefaultMaxWatchers       = 1024
)

// Runtime is the part of the gateway engine the admin API drives.
type Runtime interface {
	// Apply verifies b's digest, compiles and swaps it in, or returns a
	// *schemas.InvalidError and leaves the running config untouched. The
	// server checks only the envelope (apiVersion, version) before it, so
	// Apply must check the digest itself.
	Apply(b *schemas.Bundle) error
	// Current returns the running bundle, nil before any.
	Current() *schemas.Bundle
}

// Health is the live state of the running config shown by GET /v1/status.
type Health struct {
	// Routes is the number of routes served.
	Routes int
	// Upstreams maps an upstream name to its targets' state.
	Upstreams map[string][]client.TargetStatus
	// Breakers maps an upstream name to its breaker state.
	Breakers map[string]string
	// Discovery maps an upstream with a dns:// or srv:// target to its
	// resolution state.
	Discovery map[string]client.DiscoveryStatus
	// Traffic is what the running version and the one before it served.
	Traffic *client.TrafficReport
	// JWKS maps a jwt policy with a jwksURL to its key set's state.
	JWKS map[string]client.JWKSStatus
	// Failover maps a failover upstream to its active group.
	Failover map[string]client.FailoverStatus
	// Cache is the response cache's state.
	Cache *client.CacheStatus
}

// Persister saves the last-known-good bundle. *lkg.Store implements it.
type Persister interface {
	// Save writes b atomically.
	Save(b *schemas.Bundle) error
}

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Runtime compiles and runs bundles. Required.
	Runtime Runtime
	// Health reports the live state for GET /v1/status. Nil: only the route
	// count of the running bundle is shown.
	Health func() Health
	// Store persists each applied bundle. Nil: nothing is persisted.
	Store Persister
	// Gatherer is served on GET /metrics. Nil: /metrics is not served.
	Gatherer prometheus.Gatherer
	// Registerer gets the admin server's own metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger receives event logs. Zero: zerolog's zero Logger (discard).
	Logger zerolog.Logger
	// Watch enables GET /v1/watch. Default false.
	Watch bool
	// Heartbeat is the interval of SSE comment lines. Default 15s.
	Heartbeat time.Duration
	// EventBuffer is how many watch events are kept for Last-Event-ID
	// resume. Default 256.
	EventBuffer int
	// MaxWatchers caps concurrent watch requests; more get 503 and their
	// connection is closed. Default 1024, lowered to a quarter of the
	// process's soft RLIMIT_NOFILE so watchers cannot starve the data plane
	// of file descriptors.
	MaxWatchers int
	// MaxWatchTimeout caps a long-poll's ?timeout=. Default 5m.
	MaxWatchTimeout time.Duration
	// MaxBundleBytes caps the body of PUT /v1/bundle. Default 64 MiB.
	MaxBundleBytes int64
	// ReadHeaderTimeout of the HTTP servers. Default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout of the HTTP servers (whole request with body). Default 60s.
	// Watch streams lift it once their request is read.
	ReadTimeout time.Duration
	// IdleTimeout of kept-alive connections. Default 120s.
	IdleTimeout time.Duration
	// ObserveAllowedHosts are the names a request to the observe address
	// may carry in its Host header, besides IP literals and localhost
	// (always allowed: DNS rebinding needs a name). Another name is
	// answered 421, so a web page whose name an attacker re-points at this
	// address cannot read it. "*" allows any Host. Nil: IP literals and
	// localhost only. The admin socket does not check Host.
	ObserveAllowedHosts []string
	// ObserveShowSecrets serves the full bundle on the observe address.
	// Default false: GET /v1/bundle there replaces API-key hashes with
	// RedactedValue (the digest stays the running config's). The admin
	// socket always serves the full bundle, which the agent's checks need.
	ObserveShowSecrets bool
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Server is the admin API. Create it with New, serve it with ServeAdmin and
// ServeObserve, stop it with Shutdown.
type Server struct {
	opts    Options
	log     zerolog.Logger
	started time.Time
	bc      *broadcaster

	applyMu      sync.Mutex // one writer at a time
	stateMu      sync.RWMutex
	appliedAt    time.Time
	lastRejected *client.Rejection
	lkg          client.LastKnownGood

	encMu      sync.Mutex
	encFull    encodedBundle // the running bundle as the admin socket serves it
	encRedact  encodedBundle // and as the observe address serves it
	adminMux   *http.ServeMux
	observeMux http.Handler // the read-only mux behind the Host check

	srvMu   sync.Mutex
	servers []*http.Server
	closed  bool

	m        *metrics
	watchers atomic.Int64
	draining atomic.Bool // set by Drain: /readyz answers 503
}

// New builds a Server; it starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Runtime == nil {
		return nil, errors.New("admin: Options.Runtime is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	setDefault(&opts.Heartbeat, DefaultHeartbeat)
	setDefault(&opts.MaxWatchTimeout, DefaultMaxWatchTimeout)
	setDefault(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&opts.ReadTimeout, DefaultReadTimeout)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	if opts.MaxWatchers <= 0 {
		opts.MaxWatchers = DefaultMaxWatchers
	}
	if capped := watcherCap(opts.MaxWatchers, fdSoftLimit()); capped < opts.MaxWatchers {
		if opts.Watch {
			opts.Logger.Info().Str(logComponent, "admin").Int(logMaxWatchers, capped).
				Msg("watchers capped at a quarter of the file descriptor limit (RLIMIT_NOFILE)")
		}
		opts.MaxWatchers = capped
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = DefaultEventBuffer
	}
	if opts.MaxBundleBytes <= 0 {
		opts.MaxBundleBytes = DefaultMaxBundleBytes
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With().Str(logComponent, "admin").Logger(),
		started: opts.Now(),
		m:       newMetrics(),
	}
	if r := opts.Registerer; r != nil {
		for _, c := range s.m.collectors() {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("admin: registering metrics: %w", err)
			}
		}
	}
	if cur := opts.Runtime.Current(); cur != nil {
		s.appliedAt = s.started
		s.m.running(cur.Version, cur.Digest, s.started)
	}
	s.bc = newBroadcaster(opts.EventBuffer, uint64(s.started.UnixMicro()), s.watchState())
	s.adminMux = s.routes(true)
	s.observeMux = newHostCheck(opts.ObserveAllowedHosts).wrap(s.routes(false))
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func (s *Server) routes(write bool) *http.ServeMux {
	mux := http.NewServeMux()
	if write {
		mux.HandleFunc("PUT /v1/bundle", s.putBundle)
	}
	mux.HandleFunc("GET /v1/bundle", s.getBundle(!write && !s.opts.ObserveShowSecrets))
	mux.HandleFunc("GET /v1/status", s.getStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.getReady)
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	}
	if s.opts.Watch {
		mux.HandleFunc("GET /v1/watch", s.watch)
	}
	return mux
}

// Handler returns the full admin API, for the Unix socket.
func (s *Server) Handler() http.Handler { return s.adminMux }

// ObserveHandler returns the read-only routes (bundle, status, health,
// metrics, watch), for a TCP address. PUT /v1/bundle answers 405 there, and
// a Host that ObserveAllowedHosts does not allow answers 421.
func (s *Server) ObserveHandler() http.Handler { return s.observeMux }

// ServeAdmin serves Handler on l until Shutdown; it returns nil after
// Shutdown.
func (s *Server) ServeAdmin(l net.Listener) error { return s.serve(l, s.adminMux) }

// ServeObserve serves ObserveHandler on l until Shutdown; it returns nil
// after Shutdown.
func (s *Server) ServeObserve(l net.Listener) error { return s.serve(l, s.observeMux) }

func (s *Server) serve(l net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       withPeerCred,
		ErrorLog:          log.New(s.opts.Logger.With().Str(logComponent, "admin-http").Logger(), "", 0),
	}
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		_ = l.Close()
		return nil
	}
	s.servers = append(s.servers, hs)
	s.srvMu.Unlock()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving admin API on %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown ends watch streams, stops accepting, and waits for in-flight
// requests until ctx ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srvMu.Lock()
	s.closed = true
	servers := s.servers
	s.srvMu.Unlock()
	s.bc.close()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err, hs.Close())
		}
	}
	return errors.Join(errs...)
}

// Restore applies b, read from the last-known-good file at start, without
// persisting it again. A refusal is recorded as the last rejected attempt
// and returned.
func (s *Server) Restore(b *schemas.Bundle) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if err := b.Verify(); err != nil {
		s.reject(nil, b, err, verifyDiagnostics(err))
		return fmt.Errorf("restoring last-known-good bundle: %w", err)
	}
	if err := s.opts.Runtime.Apply(b); err != nil {
		s.reject(nil, b, err, diagnosticsOf(err))
		s.m.outcome(resultRejected)
		return fmt.Errorf("restoring last-known-good bundle %s: %w", b.Version, err)
	}
	s.m.outcome(resultApplied)
	s.applied(b)
	s.stateMu.Lock()
	s.lkg.SavedVersion = b.Version
	s.stateMu.Unlock()
	s.log.Info().Str(logVersion, b.Version).Str(logDigest, b.Digest).Msg("restored last-known-good bundle")
	return nil
}

func (s *Server) putBundle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBundleBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, client.ErrorBody{
				Error: fmt.Sprintf("bundle larger than %d bytes", tooBig.Limit),
			})
			return
		}
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: "reading bundle: " + err.Error()})
		return
	}
	b, err := schemas.DecodeBundle(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
		return
	}

	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	// The envelope is checked here; the digest, which costs a full encode
	// of the config, is checked once: by the Runtime's Apply, or below
	// before a no-op is answered.
	if err := checkEnvelope(b); err != nil {
		s.refuse(w, r, b, err)
		return
	}
	cur := s.opts.Runtime.Current()
	if im := r.Header.Get("If-Match"); im != "" && !ifMatch(im, cur) {
		curVersion := ""
		if cur != nil {
			curVersion = cur.Version
			w.Header().Set("ETag", client.ETag(cur.Version))
		}
		s.log.Warn().Str(logVersion, b.Version).Str(logIfMatch, im).Str(logRunning, curVersion).Func(logPeer(r)).
			Msg("stale writer refused")
		writeError(w, http.StatusPreconditionFailed, client.ErrorBody{
			Error:          fmt.Sprintf("If-Match %s does not match the running version %q", im, curVersion),
			CurrentVersion: curVersion,
		})
		return
	}
	if cur != nil && cur.Digest == b.Digest {
		if err := b.Verify(); err != nil {
			s.refuse(w, r, b, err)
			return
		}
		s.m.outcome(resultUnchanged)
		w.Header().Set("ETag", client.ETag(cur.Version))
		writeJSON(w, http.StatusOK, client.Applied{
			Version: cur.Version, Digest: cur.Digest, AppliedAt: s.appliedTime(), Unchanged: true,
		})
		return
	}
	began := time.Now()
	err = s.opts.Runtime.Apply(b)
	s.m.applyDuration.Observe(time.Since(began).Seconds())
	if err != nil {
		diags := diagnosticsOf(err)
		s.reject(r, b, err, diags)
		code, result := http.StatusUnprocessableEntity, resultRejected
		if diags == nil {
			code, result = http.StatusInternalServerError, resultFailed
		}
		s.m.outcome(result)
		writeError(w, code, client.ErrorBody{Error: err.Error(), Diagnostics: diags})
		return
	}
	at := s.applied(b)
	s.m.outcome(resultApplied)
	ans := client.Applied{Version: b.Version, Digest: b.Digest, AppliedAt: at}
	if s.opts.Store != nil {
		if err := s.save(b); err != nil {
			s.m.lkgFailures.Inc()
			s.log.Error().Err(err).Str(logVersion, b.Version).Msg("applied bundle not saved as last-known-good")
			ans.Warning = "applied, but not saved as last-known-good: " + err.Error()
		}
	}
	s.log.Info().Str(logVersion, b.Version).Str(logDigest, b.Digest).Func(logPeer(r)).Msg("applied bundle")
	w.Header().Set("ETag", client.ETag(b.Version))
	writeJSON(w, http.StatusOK, ans)
}

// save persists b as last-known-good and records the outcome for
// GET /v1/status. applyMu is held.
func (s *Server) save(b *schemas.Bundle) error {
	err := s.opts.Store.Save(b)
	at := s.opts.Now().UTC()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.lkg.At, s.lkg.Error = at, ""
	if err != nil {
		s.lkg.Error = err.Error()
		return err
	}
	s.lkg.SavedVersion, s.lkg.SavedAt = b.Version, at
	return nil
}

// refuse answers 422 for a bundle whose envelope or digest is wrong and
// records it. applyMu is held.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, b *schemas.Bundle, err error) {
	diags := verifyDiagnostics(err)
	s.reject(r, b, err, diags)
	s.m.outcome(resultRejected)
	writeError(w, http.StatusUnprocessableEntity, client.ErrorBody{Error: err.Error(), Diagnostics: diags})
}

// checkEnvelope runs the cheap checks of Bundle.Verify: apiVersion and
// version.
func checkEnvelope(b *schemas.Bundle) error {
	if b.APIVersion != schemas.APIVersion {
		return fmt.Errorf("%w: got %q, want %q", schemas.ErrAPIVersion, b.APIVersion, schemas.APIVersion)
	}
	if b.Version == "" {
		return schemas.ErrNoVersion
	}
	return nil
}

// applied records a successful apply and tells watchers. applyMu is held.
func (s *Server) applied(b *schemas.Bundle) time.Time {
	at := s.opts.Now().UTC()
	s.stateMu.Lock()
	s.appliedAt = at
	s.stateMu.Unlock()
	s.m.running(b.Version, b.Digest, at)
	s.bc.publish(client.EventApplied, s.watchState())
	return at
}

// RecordRejected records err as the last rejected attempt, for a bundle
// refused before it could be decoded, such as an unreadable last-known-good
// file at start. b may be nil.
func (s *Server) RecordRejected(b *schemas.Bundle, err error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.reject(nil, b, err, diagnosticsOf(err))
}

// reject records a refused bundle and tells watchers. r is the request that
// sent it (nil for a bundle read from disk), whose writer is logged.
// applyMu is held.
func (s *Server) reject(r *http.Request, b *schemas.Bundle, err error, diags []schemas.Diagnostic) {
	if b == nil {
		b = &schemas.Bundle{}
	}
	rej := &client.Rejection{Version: b.Version, Digest: b.Digest, At: s.opts.Now().UTC(), Error: err.Error(), Diagnostics: diags}
	s.stateMu.Lock()
	s.lastRejected = rej
	s.stateMu.Unlock()
	s.log.Warn().Str(logVersion, b.Version).Str(logDigest, b.Digest).Int(logProblems, len(diags)).
		Func(logPeer(r)).Msg("rejected bundle")
	s.bc.publish(client.EventRejected, s.watchState())
}

func (s *Server) appliedTime() time.Time {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	return s.appliedAt
}

func (s *Server) watchState() client.WatchState {
	var st client.WatchState
	if cur := s.opts.Runtime.Current(); cur != nil {
		st.Version, st.Digest = cur.Version, cur.Digest
	}
	if s.opts.Health != nil {
		st.Traffic = s.opts.Health().Traffic.Totals()
	}
	s.stateMu.RLock()
	st.AppliedAt = s.appliedAt
	st.LastRejected = s.lastRejected
	s.stateMu.RUnlock()
	return st
}

// getBundle serves the running bundle; with redact, its API-key hashes are
// left out (see Options.ObserveShowSecrets).
func (s *Server) getBundle(redact bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cur := s.opts.Runtime.Current()
		if cur == nil {
			writeError(w, http.StatusNotFound, client.ErrorBody{Error: "no bundle applied yet"})
			return
		}
		etag := client.ETag(cur.Version)
		w.Header().Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, cur.Version) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		data, err := s.encode(cur, redact)
		if err != nil {
			writeError(w, http.StatusInternalServerError, client.ErrorBody{Error: err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	}
}

// encodedBundle caches the JSON of one bundle.
type encodedBundle struct {
	b    *schemas.Bundle
	data []byte
}

// encode returns the JSON of b, redacted or not, cached for the running
// bundle.
func (s *Server) encode(b *schemas.Bundle, redact bool) ([]byte, error) {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	cache := &s.encFull
	if redact {
		cache = &s.encRedact
	}
	if cache.b == b {
		return cache.data, nil
	}
	v := b
	if redact {
		v = redactBundle(b)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding running bundle: %w", err)
	}
	*cache = encodedBundle{b: b, data: data}
	return data, nil
}

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

func (s *Server) status() client.Status {
	st := client.Status{StartedAt: s.started.UTC()}
	if cur := s.opts.Runtime.Current(); cur != nil {
		src := cur.Source
		st.Ready, st.Version, st.Digest, st.Source = true, cur.Version, cur.Digest, &src
		st.Routes = len(cur.Config.Routes)
	}
	if s.opts.Health != nil {
		h := s.opts.Health()
		st.Discovery = h.Discovery
		st.Routes, st.Upstreams, st.Breakers, st.Traffic = h.Routes, h.Upstreams, h.Breakers, h.Traffic
		st.JWKS = h.JWKS
		st.Failover = h.Failover
		st.Cache = h.Cache
	}
	s.stateMu.RLock()
	st.AppliedAt, st.LastRejected = s.appliedAt, s.lastRejected
	if s.opts.Store != nil {
		lkg := s.lkg
		st.LastKnownGood = &lkg
	}
	s.stateMu.RUnlock()
	return st
}

// Drain makes GET /readyz answer 503 from now on, while every other route
// keeps serving: a load balancer or Kubernetes takes the process out of
// rotation before it stops accepting connections.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) getReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "shutting down\n")
		return
	}
	if s.opts.Runtime.Current() == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "no config loaded\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// verifyDiagnostics turns a Bundle.Verify error into a diagnostic on the
// field at fault.
func verifyDiagnostics(err error) []schemas.Diagnostic {
	path := ""
	switch {
	case errors.Is(err, schemas.ErrAPIVersion):
		path = "apiVersion"
	case errors.Is(err, schemas.ErrDigest):
		path = "digest"
	case errors.Is(err, schemas.ErrNoVersion):
		path = "version"
	}
	return []schemas.Diagnostic{{Path: path, Message: err.Error()}}
}

// diagnosticsOf returns the diagnostics of a *schemas.InvalidError, nil for
// any other error.
func diagnosticsOf(err error) []schemas.Diagnostic {
	var inv *schemas.InvalidError
	if errors.As(err, &inv) {
		if len(inv.Diagnostics) == 0 {
			return []schemas.Diagnostic{{Message: err.Error()}}
		}
		return inv.Diagnostics
	}
	return nil
}

// ifMatch reports whether an If-Match header value lets a write over cur
// proceed: "*" needs a running bundle, a list of entity tags needs one equal
// to the running version.
func ifMatch(header string, cur *schemas.Bundle) bool {
	if cur == nil {
		return false
	}
	return etagListMatches(header, cur.Version)
}

// etagListMatches reports whether a comma-separated list of entity tags
// (or "*") names version. Weak tags compare by their opaque value. Tags are
// scanned as quoted strings, so a version holding a comma or an escaped
// quote (client.ETag quotes with strconv.Quote) still matches.
func etagListMatches(header, version string) bool {
	rest := header
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return false
		}
		if rest[0] == '*' {
			after := strings.TrimLeft(rest[1:], " \t")
			if after == "" || after[0] == ',' {
				return true
			}
		}
		rest = strings.TrimPrefix(rest, "W/")
		if rest == "" || rest[0] != '"' {
			i := strings.IndexByte(rest, ',')
			if i < 0 {
				return false
			}
			rest = rest[i+1:]
			continue
		}
		end := -1
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\\' {
				i++
				continue
			}
			if rest[i] == '"' {
				end = i
				break
			}
		}
		if end < 0 {
			return false
		}
		tag := rest[:end+1]
		if unq, err := strconv.Unquote(tag); err == nil && unq == version {
			return true
		}
		if tag[1:end] == version {
			return true
		}
		rest = rest[end+1:]
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, body client.ErrorBody) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, body)
}
