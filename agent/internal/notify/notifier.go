package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// Results counted in gitgate_agent_notifications_total.
const (
	ResultSent    = "sent"
	ResultFailed  = "failed"
	ResultDropped = "dropped"
)

// Options are what New needs besides the Config.
type Options struct {
	// Logger logs deliveries that failed (never a URL or a secret).
	Logger zerolog.Logger
	// Registerer receives gitgate_agent_notifications_total{sink,result}.
	// Nil: not registered.
	Registerer prometheus.Registerer
	// Client sends the requests. Nil: a client that follows no redirects.
	Client *http.Client
	// Backoff is the wait before the first retry; it doubles per attempt
	// up to 30 times as much (capped at one minute), with jitter.
	// Default 1s.
	Backoff time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Notifier filters the loop's events and delivers them to sinks. It
// implements syncer.Notifier. Create it with New, run it with Run, stop it
// with Close or Run's context.
type Notifier struct {
	opts    Options
	set     settings
	log     zerolog.Logger
	workers []*worker
	total   *prometheus.CounterVec

	mu sync.Mutex
	// failingNoticed is the FailingSince of the streak a sync-failing
	// notification was queued for; zero when none.
	failingNoticed time.Time

	quit      chan struct{}
	closeOnce sync.Once
	runMu     sync.Mutex
	running   chan struct{} // closed when Run returns; nil before Run
}

// worker is one sink's queue and its delivery goroutine.
type worker struct {
	name   string
	sink   sink
	events map[string]bool // nil: all

	mu    sync.Mutex
	queue []message
	wake  chan struct{} // size 1
}

// New resolves cfg (reading the secrets it names) into a Notifier that is
// not yet delivering. Errors name the field, file or variable, never a
// secret.
func New(cfg Config, opts Options) (*Notifier, error) {
	set, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{
		opts: opts, set: set, log: opts.Logger.With().Str("component", "notify").Logger(), quit: make(chan struct{}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_notifications_total",
			Help: "Notifications by sink and result (sent; failed after the last attempt or refused; dropped from a full queue or at shutdown).",
		}, []string{"sink", "result"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(n.total); err != nil {
			return nil, fmt.Errorf("registering the notification metrics: %w", err)
		}
	}
	for i, sc := range cfg.Sinks {
		path := fmt.Sprintf("notifications.sinks[%d]", i)
		u := sc.URL
		if u == "" {
			if u, err = readRef(sc.URLFile, sc.URLEnv, "URL of sink "+strconv.Quote(sc.Name)); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := checkURL(u, sc.Type == TypeWebhook); err != nil {
			return nil, &ConfigError{path + ".url", err.Error()}
		}
		w := &worker{name: sc.Name, wake: make(chan struct{}, 1)}
		switch sc.Type {
		case TypeWebhook:
			secret, err := readRef(sc.SecretFile, sc.SecretEnv, "secret of sink "+strconv.Quote(sc.Name))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			w.sink = &webhookSink{url: u, secret: []byte(secret)}
		case TypeSlack:
			w.sink = &slackSink{url: u}
		}
		if len(sc.Events) > 0 {
			w.events = map[string]bool{}
			for _, e := range sc.Events {
				w.events[e] = true
			}
		}
		for _, r := range []string{ResultSent, ResultFailed, ResultDropped} {
			n.total.WithLabelValues(sc.Name, r)
		}
		n.workers = append(n.workers, w)
	}
	return n, nil
}

// Notify filters e and queues it for the sinks that want it. It never
// blocks on delivery: a full queue drops its oldest notification.
func (n *Notifier) Notify(e syncer.Event) {
	name, ok := n.name(e)
	if !ok {
		return
	}
	m := message{name: name, delivery: newDeliveryID(), event: e}
	for _, w := range n.workers {
		if w.events != nil && !w.events[name] {
			continue
		}
		w.mu.Lock()
		if len(w.queue) >= n.set.queueSize {
			w.queue = slices.Delete(w.queue, 0, 1)
			n.total.WithLabelValues(w.name, ResultDropped).Inc()
			n.log.Warn().Str("sink", w.name).Str("event", name).Msg("notification queue full: dropped the oldest notification")
		}
		w.queue = append(w.queue, m)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// name maps a loop event to the notification it makes, if any: a failed
// pass makes sync-failing once its streak is SyncFailingAfter old, and a
// recovery makes sync-recovered only after that.
func (n *Notifier) name(e syncer.Event) (string, bool) {
	switch e.Kind {
	case syncer.EventSyncFailed:
		n.mu.Lock()
		defer n.mu.Unlock()
		if e.FailingSince.IsZero() || n.failingNoticed.Equal(e.FailingSince) || e.Time.Sub(e.FailingSince) < n.set.failingAfter {
			return "", false
		}
		n.failingNoticed = e.FailingSince
		return SyncFailing, true
	case syncer.EventSyncRecovered:
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.failingNoticed.IsZero() || !n.failingNoticed.Equal(e.FailingSince) {
			return "", false
		}
		n.failingNoticed = time.Time{}
		return SyncRecovered, true
	}
	name := string(e.Kind)
	return name, slices.Contains(EventNames, name)
}

// Run delivers until ctx ends or Close is called, then returns nil after
// every worker has stopped; notifications still queued are dropped and
// counted. Call it once.
func (n *Notifier) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.running != nil {
		n.runMu.Unlock()
		return errors.New("notify: Run called twice")
	}
	done := make(chan struct{})
	n.running = done
	n.runMu.Unlock()
	defer close(done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, w := range n.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.work(ctx, w)
		}()
	}
	wg.Wait()
	return nil
}

// Close stops delivery and waits for Run to return (if it runs).
func (n *Notifier) Close() error {
	n.closeOnce.Do(func() { close(n.quit) })
	n.runMu.Lock()
	done := n.running
	n.runMu.Unlock()
	if done != nil {
		<-done
	}
	return nil
}

// work delivers w's queue, oldest first, until ctx ends.
func (n *Notifier) work(ctx context.Context, w *worker) {
	for {
		w.mu.Lock()
		var m message
		ok := len(w.queue) > 0
		if ok {
			m = w.queue[0]
			w.queue = slices.Delete(w.queue, 0, 1)
		}
		w.mu.Unlock()
		if ctx.Err() != nil {
			w.mu.Lock()
			left := len(w.queue)
			if ok {
				left++
			}
			w.queue = nil
			w.mu.Unlock()
			if left > 0 {
				n.total.WithLabelValues(w.name, ResultDropped).Add(float64(left))
				n.log.Warn().Str("sink", w.name).Int("notifications", left).Msg("stopping: queued notifications dropped")
			}
			return
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-w.wake:
			}
			continue
		}
		n.deliver(ctx, w, m)
	}
}

// deliver sends m with retries; it gives up after MaxAttempts, on a
// refusal (a 4xx other than 408 and 429) or when ctx ends.
func (n *Notifier) deliver(ctx context.Context, w *worker, m message) {
	log := n.log.With().Str("sink", w.name).Str("event", m.name).Str("delivery", m.delivery).Logger()
	wait := n.opts.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.attempt(ctx, w, m)
		if err == nil {
			n.total.WithLabelValues(w.name, ResultSent).Inc()
			log.Debug().Int("attempt", attempt).Msg("notification sent")
			return
		}
		if ctx.Err() != nil {
			n.total.WithLabelValues(w.name, ResultDropped).Inc()
			return
		}
		if !retry || attempt >= n.set.maxAttempts {
			n.total.WithLabelValues(w.name, ResultFailed).Inc()
			log.Warn().Err(err).Int("attempt", attempt).Msg("notification not delivered: giving up")
			return
		}
		log.Debug().Err(err).Int("attempt", attempt).Msg("notification not delivered: retrying")
		d := time.Duration(float64(wait) * (0.8 + 0.4*mrand.Float64()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			n.total.WithLabelValues(w.name, ResultDropped).Inc()
			return
		case <-t.C:
		}
		wait = min(2*wait, 30*n.opts.Backoff, time.Minute)
	}
}

// attempt makes one delivery; retry says whether a failure is transient.
func (n *Notifier) attempt(ctx context.Context, w *worker, m message) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.set.timeout)
	defer cancel()
	req, err := w.sink.request(ctx, m, n.opts.Now())
	if err != nil {
		return false, err
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("posting: %w", redact(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("the receiver answered %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("the receiver refused the notification with %d", resp.StatusCode)
	}
}

// redact strips the URL from a *url.Error: a Slack URL is a secret.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func newDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
