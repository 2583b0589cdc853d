package peers

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DefaultNonceCache is how many nonces a Receiver remembers.
const DefaultNonceCache = 4096

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// Secret is the webhook secret the peers share. Required.
	Secret []byte
	// Trigger asks for a sync without blocking (the sync loop's one-slot
	// mailbox). Required. It must not fan the nudge out again.
	Trigger func(reason string)
	// Window is how far a nudge's timestamp may be from this clock.
	// Default DefaultWindow (30s).
	Window time.Duration
	// NonceCache bounds the nonces remembered against replays. A nonce is
	// kept until its timestamp leaves the window; when the cache is full
	// of live nonces, nudges are refused (503) until some expire. Default
	// DefaultNonceCache.
	NonceCache int
	// Registerer receives the nudges-received metric. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger logs refusals (sampled) and accepted nudges.
	Logger zerolog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Receiver serves POST /v1/nudge: a signed, fresh, never-seen nudge
// triggers a sync; anything else is refused.
type Receiver struct {
	opts     ReceiverOptions
	received *prometheus.CounterVec
	warnLog  zerolog.Logger

	mu    sync.Mutex
	seen  map[string]time.Time // nonce -> when it expires
	order *list.List           // nonces, oldest first
}

// NewReceiver checks opts and returns a Receiver.
func NewReceiver(opts ReceiverOptions) (*Receiver, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("peers: a webhook secret is required to take nudges")
	}
	if opts.Trigger == nil {
		return nil, errors.New("peers: Trigger is required")
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.NonceCache <= 0 {
		opts.NonceCache = DefaultNonceCache
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Receiver{
		opts: opts,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_nudges_received_total",
			Help: "Nudges from peers by result (accepted, replayed, stale, bad_signature, malformed, busy).",
		}, []string{"result"}),
		warnLog: opts.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}),
		seen:    make(map[string]time.Time),
		order:   list.New(),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.received); err != nil {
			return nil, fmt.Errorf("registering nudge metrics: %w", err)
		}
	}
	return r, nil
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.answer(w, "malformed", http.StatusMethodNotAllowed, "POST only")
		return
	}
	// A nudge has no body; read none, and close rather than drain one.
	if req.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		r.answer(w, "malformed", http.StatusRequestEntityTooLarge, "a nudge has no body")
		return
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, req.Body, 0))
	now := r.opts.Now()
	n, err := verify(req, r.opts.Secret, now, r.opts.Window)
	if err != nil {
		result, code := "malformed", http.StatusBadRequest
		switch {
		case errors.Is(err, ErrSignature):
			result, code = "bad_signature", http.StatusUnauthorized
		case errors.Is(err, ErrStale):
			result, code = "stale", http.StatusUnauthorized
		}
		r.warnLog.Warn().Err(err).Str("remote", req.RemoteAddr).Msg("nudge refused")
		r.answer(w, result, code, err.Error())
		return
	}
	switch r.remember(n.nonce, n.at.Add(r.opts.Window), now) {
	case errReplayed:
		r.warnLog.Warn().Str("remote", req.RemoteAddr).Msg("nudge refused: replayed")
		r.answer(w, "replayed", http.StatusConflict, "nudge already seen")
		return
	case errCacheFull:
		r.warnLog.Warn().Int("nonce_cache", r.opts.NonceCache).Msg("nudge refused: nonce cache full")
		w.Header().Set("Retry-After", "30")
		r.answer(w, "busy", http.StatusServiceUnavailable, "busy")
		return
	}
	r.opts.Trigger("nudge")
	r.opts.Logger.Info().Str("remote", req.RemoteAddr).Str("reason", n.reason).Msg("nudged by a peer: sync queued")
	r.answer(w, "accepted", http.StatusAccepted, "sync queued")
}

var (
	errReplayed  = errors.New("replayed")
	errCacheFull = errors.New("nonce cache full")
)

// remember records nonce until expires. Expired nonces are dropped first
// (their timestamps would be refused anyway).
func (r *Receiver) remember(nonce string, expires, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		k := e.Value.(string)
		if r.seen[k].After(now) {
			break
		}
		r.order.Remove(e)
		delete(r.seen, k)
	}
	if _, ok := r.seen[nonce]; ok {
		return errReplayed
	}
	if r.order.Len() >= r.opts.NonceCache {
		return errCacheFull
	}
	// Nonces are kept in order of expiry: timestamps arrive nearly in
	// order, and one expiring out of order only stays a little longer.
	r.seen[nonce] = expires
	r.order.PushBack(nonce)
	return nil
}

func (r *Receiver) answer(w http.ResponseWriter, result string, code int, msg string) {
	r.received.WithLabelValues(result).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}
