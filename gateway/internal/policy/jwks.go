package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// Bounds of a remote JWKS fetch. A fetch that takes longer, or a document
// that is larger, fails; the last good key set keeps serving.
const (
	defaultJWKSTimeout  = 5 * time.Second
	defaultJWKSMaxBytes = 1 << 20
	// defaultJWKSKidGap is the shortest time between two refreshes asked
	// for by tokens naming an unknown kid: a flood of random kids costs the
	// provider one fetch per gap and policy, not one per request.
	defaultJWKSKidGap = 10 * time.Second
	// jwksRetry bounds the wait after a failed fetch before the next try
	// (when jwksRefresh is longer).
	jwksRetry = 30 * time.Second
)

// Results of a JWKS refresh, the values of the "result" label.
const (
	jwksResultOK    = "ok"
	jwksResultError = "error"
)

// errNoKey is returned by keyFunc when no key has the token's kid and
// algorithm: for a remote JWKS it asks for a refresh.
var errNoKey = errors.New("no key for the token's kid")

// errJWKSUnavailable is returned by keyFunc while a remote JWKS has never
// been fetched.
var errJWKSUnavailable = errors.New("the JWKS has not been fetched yet")

// jwksSettings are what a remote key set depends on. A policy compiled
// again with the same settings keeps its source (its cache and goroutine).
type jwksSettings struct {
	url     string
	caPEM   string // "" for the system roots
	refresh time.Duration
}

// remoteKeys is one fetched key set.
type remoteKeys struct {
	keys []publicKey
	at   time.Time
}

// jwksSource fetches one policy's JWKS, keeps the last good set and
// refreshes it on an interval and when asked (an unknown kid). Its one
// goroutine is started by newJWKSSource and stopped by the release that
// drops the last reference: each Set holding the source holds one.
type jwksSource struct {
	policy   string
	settings jwksSettings
	client   *http.Client
	timeout  time.Duration
	maxBytes int64
	kidGap   time.Duration

	keys atomic.Pointer[remoteKeys]

	trigger chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	refs     int
	inflight chan struct{} // closed when the running fetch ends
	lastKick time.Time     // last refresh asked for by an unknown kid
	lastErr  string        // last fetch error, "" after a success

	log               zerolog.Logger
	metrics           *metrics // nil: no metrics
	okCount, errCount prometheus.Counter
	lastSuccess       prometheus.Gauge
}

// newJWKSSource starts fetching settings.url for policy. seed, when not
// nil, is a key set to serve until the first fetch ends (the set of a
// source with the same URL and CA in the previous config).
func newJWKSSource(policy string, st jwksSettings, s *Set, seed *remoteKeys) (*jwksSource, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if st.caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(st.caPEM)) {
			return nil, errors.New("no PEM certificate could be read")
		}
		tlsCfg.RootCAs = pool
	}
	timeout := cmpOr(s.opts.jwksTimeout, defaultJWKSTimeout)
	src := &jwksSource{
		policy:   policy,
		settings: st,
		client: &http.Client{
			// No proxy from the environment and no redirects: the keys
			// come from the configured URL over a verified connection.
			Transport: &http.Transport{
				TLSClientConfig:     tlsCfg,
				TLSHandshakeTimeout: timeout,
				MaxIdleConns:        1,
				IdleConnTimeout:     90 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:  timeout,
		maxBytes: cmpOr(s.opts.jwksMaxBytes, defaultJWKSMaxBytes),
		kidGap:   cmpOr(s.opts.jwksKidGap, defaultJWKSKidGap),
		trigger:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		refs:     1,
		log:      s.opts.Logger.With().Str("component", "jwks").Str("policy", policy).Str("url", st.url).Logger(),
	}
	if s.metrics != nil {
		src.metrics = s.metrics
		s.metrics.jwksStarted(policy)
		src.okCount = s.metrics.jwksRefreshes.WithLabelValues(policy, jwksResultOK)
		src.errCount = s.metrics.jwksRefreshes.WithLabelValues(policy, jwksResultError)
		src.lastSuccess = s.metrics.jwksLastSuccess.WithLabelValues(policy)
	}
	if seed != nil {
		src.keys.Store(seed)
	}
	// The first fetch counts as running from the start: a request that
	// comes before it ends waits for it (see waitFirst).
	src.inflight = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	src.cancel = cancel
	go src.run(ctx)
	return src, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// retain adds a reference: a later Set keeps the source. It reports false
// for a source already stopped.
func (src *jwksSource) retain() bool {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.refs == 0 {
		return false
	}
	src.refs++
	return true
}

// release drops a reference; the last one stops the goroutine and waits
// for it.
func (src *jwksSource) release() {
	src.mu.Lock()
	src.refs--
	last := src.refs == 0
	src.mu.Unlock()
	if last {
		src.cancel()
		<-src.done
		src.client.CloseIdleConnections()
		if src.metrics != nil {
			src.metrics.jwksStopped(src.policy)
		}
	}
}

// run fetches at once, then every refresh (sooner after a failure) and
// whenever triggered, until ctx ends.
func (src *jwksSource) run(ctx context.Context) {
	defer close(src.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			src.mu.Lock()
			if src.inflight != nil {
				close(src.inflight)
				src.inflight = nil
			}
			src.mu.Unlock()
			return
		case <-timer.C:
		case <-src.trigger:
		}
		src.mu.Lock()
		if src.inflight == nil {
			src.inflight = make(chan struct{})
		}
		src.mu.Unlock()

		err := src.fetch(ctx)

		if err != nil {
			// The error names the URL and the field, never a key.
			src.log.Warn().Err(err).Bool("serving_last_good", src.current() != nil).Msg("JWKS fetch failed")
		}
		src.mu.Lock()
		if err == nil && src.lastErr != "" {
			src.log.Info().Msg("JWKS fetched again after failures")
		}
		select { // a trigger for the fetch that just ended
		case <-src.trigger:
		default:
		}
		close(src.inflight)
		src.inflight = nil
		if err != nil {
			src.lastErr = err.Error()
		} else {
			src.lastErr = ""
		}
		src.mu.Unlock()

		next := src.settings.refresh
		if err != nil {
			inc(src.errCount)
			next = min(next, jwksRetry)
		} else {
			inc(src.okCount)
		}
		timer.Reset(next)
	}
}

// refreshForUnknownKid asks for a refresh because a token named a kid the
// set does not hold, and waits (bounded by the fetch timeout and ctx) for
// it. It returns false without fetching when a kid-triggered refresh ran
// less than kidGap ago and none is running: a flood of random kids costs
// one fetch per gap. Requests that arrive during a fetch share it.
func (src *jwksSource) refreshForUnknownKid(ctx context.Context) bool {
	src.mu.Lock()
	ch := src.inflight
	if ch == nil {
		now := time.Now()
		if !src.lastKick.IsZero() && now.Sub(src.lastKick) < src.kidGap {
			src.mu.Unlock()
			return false
		}
		src.lastKick = now
		ch = make(chan struct{})
		src.inflight = ch
		select {
		case src.trigger <- struct{}{}:
		default:
		}
	}
	src.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitFirst waits, bounded by ctx, for a running fetch when no key set
// has been fetched yet.
func (src *jwksSource) waitFirst(ctx context.Context) {
	src.mu.Lock()
	ch := src.inflight
	src.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// current returns the key set being served, nil before the first fetch.
func (src *jwksSource) current() *remoteKeys { return src.keys.Load() }

// fetch reads the JWKS once and, when it holds a usable key, serves it.
// Its errors name the URL and, for a document that is not a JWKS, the
// field, never a value of a key.
func (src *jwksSource) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, src.timeout)
	defer cancel()
	url := src.settings.url
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("fetching the JWKS from %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := src.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the JWKS: %w", err) // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the JWKS from %s: HTTP status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, src.maxBytes+1))
	if err != nil {
		return fmt.Errorf("reading the JWKS from %s: %w", url, err)
	}
	if int64(len(body)) > src.maxBytes {
		return fmt.Errorf("the JWKS from %s is larger than %d bytes", url, src.maxBytes)
	}
	var set schemas.JWKS
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("the document from %s is not a JWKS: %s", url, jsonProblem(err))
	}
	// A provider's set may hold keys of kinds this gateway does not verify
	// with (encryption keys, other curves): they are left out, and the set
	// is refused only when no key is usable.
	var keys []publicKey
	var firstErr string
	for i, k := range set.Keys {
		pk, err := parseJWK(k)
		if err != nil {
			if firstErr == "" {
				firstErr = fmt.Sprintf("key %d: %s", i, redacted(err))
			}
			continue
		}
		keys = append(keys, pk)
	}
	if len(keys) == 0 {
		if firstErr != "" {
			return fmt.Errorf("the JWKS from %s has no usable key (%s)", url, firstErr)
		}
		return fmt.Errorf("the JWKS from %s has no keys", url)
	}
	now := time.Now()
	src.keys.Store(&remoteKeys{keys: keys, at: now})
	if src.lastSuccess != nil {
		src.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	}
	return nil
}

// JWKSState is the state of a jwt policy's remote key set.
type JWKSState struct {
	// Policy is the jwt policy's name, URL the JWKS it fetches.
	Policy, URL string
	// Keys is the number of keys served; 0 before the first fetch.
	Keys int
	// LastSuccess is when the served set was fetched; zero before.
	LastSuccess time.Time
	// LastError is the error of the last fetch, "" when it succeeded.
	LastError string
}

// JWKS returns the state of every remote key set of s, by policy name.
func (s *Set) JWKS() []JWKSState {
	out := make([]JWKSState, 0, len(s.jwks))
	for _, name := range slices.Sorted(maps.Keys(s.jwks)) {
		src := s.jwks[name]
		st := JWKSState{Policy: name, URL: src.settings.url}
		if k := src.current(); k != nil {
			st.Keys, st.LastSuccess = len(k.keys), k.at
		}
		src.mu.Lock()
		st.LastError = src.lastErr
		src.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// jwksFor returns the source of policy's remote key set for settings st:
// the previous Set's when its settings are the same (retained), else a new
// one seeded with the previous keys when URL and CA are the same.
func (b *build) jwksFor(st jwksSettings) (*jwksSource, error) {
	var seed *remoteKeys
	if b.prev != nil {
		if old := b.prev.jwks[b.name]; old != nil {
			if old.settings == st && old.retain() {
				b.set.jwks[b.name] = old
				return old, nil
			}
			if old.settings.url == st.url && old.settings.caPEM == st.caPEM {
				seed = old.current()
			}
		}
	}
	src, err := newJWKSSource(b.name, st, b.set, seed)
	if err != nil {
		return nil, err
	}
	b.set.jwks[b.name] = src
	return src, nil
}
