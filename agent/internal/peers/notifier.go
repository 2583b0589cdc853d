package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of a Notifier.
const (
	// DefaultConcurrency is how many peers are nudged at once.
	DefaultConcurrency = 16
	// DefaultTimeout bounds one nudge to one peer, connection included.
	DefaultTimeout = 2 * time.Second
)

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	// Peers are nudged; this replica is left out by the Set. Required.
	Peers *Set
	// Secret is the webhook secret the peers share. Required.
	Secret []byte
	// Client sends the nudges. Nil: a client of its own that ignores
	// $HTTP_PROXY. Its own timeout, if any, applies besides Timeout.
	Client *http.Client
	// Concurrency bounds the nudges in flight. Default DefaultConcurrency.
	// A dead peer holds a slot for at most Timeout, so with more dead
	// peers than slots the others wait up to Timeout.
	Concurrency int
	// Timeout bounds one nudge to one peer. Default DefaultTimeout (2s).
	Timeout time.Duration
	// Registerer receives the nudges-sent metric. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger logs fan-outs and failed nudges.
	Logger zerolog.Logger
	// Now is the clock used for timestamps. Nil: time.Now.
	Now func() time.Time
}

// Result is the outcome of one nudge to one peer.
type Result struct {
	// Addr is the peer's host:port.
	Addr string
	// Code is the peer's HTTP status; 0 when no answer came.
	Code int
	// Err is why the nudge failed; nil when the peer took it (202).
	Err error
}

// Notifier nudges every peer. Nudge queues a fan-out without blocking;
// fan-outs asked for while one runs coalesce into one more. It owns one
// worker goroutine: Close stops it and waits.
type Notifier struct {
	opts    NotifierOptions
	sent    *prometheus.CounterVec
	mailbox chan string
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewNotifier checks opts and starts the worker.
func NewNotifier(opts NotifierOptions) (*Notifier, error) {
	if opts.Peers == nil {
		return nil, errors.New("peers: Peers is required")
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("peers: a webhook secret is required to sign nudges")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		// Peers talk to each other directly: no $HTTP_PROXY, and few idle
		// connections, since fan-outs are rare.
		opts.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{
		opts: opts,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_nudges_sent_total",
			Help: "Nudges sent to peers by result (accepted, refused, unreachable).",
		}, []string{"result"}),
		mailbox: make(chan string, 1),
		done:    make(chan struct{}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(n.sent); err != nil {
			return nil, fmt.Errorf("registering nudge metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.work(ctx)
	return n, nil
}

// Nudge queues a fan-out for reason (webhook, rollback, resume) and
// returns at once. The newest reason wins when fan-outs coalesce.
func (n *Notifier) Nudge(reason string) {
	for {
		select {
		case n.mailbox <- reason:
			return
		default:
		}
		select {
		case <-n.mailbox:
		default:
		}
	}
}

// Close stops the worker and waits for it; a fan-out in flight is
// cancelled.
func (n *Notifier) Close() error {
	n.cancel()
	<-n.done
	n.opts.Client.CloseIdleConnections()
	return nil
}

func (n *Notifier) work(ctx context.Context) {
	defer close(n.done)
	for {
		select {
		case <-ctx.Done():
			return
		case reason := <-n.mailbox:
			n.Broadcast(ctx, reason)
		}
	}
}

// Broadcast nudges every peer now and returns when each has answered,
// failed or timed out. At most Concurrency nudges are in flight.
func (n *Notifier) Broadcast(ctx context.Context, reason string) []Result {
	log := n.opts.Logger.With().Str("reason", reason).Logger()
	rctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	addrs, err := n.opts.Peers.Addrs(rctx)
	cancel()
	if err != nil {
		log.Warn().Err(err).Msg("cannot list peers: no nudge sent")
		return nil
	}
	results := make([]Result, len(addrs))
	sem := make(chan struct{}, n.opts.Concurrency)
	var wg sync.WaitGroup
	for i, addr := range addrs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Addr: addr, Err: ctx.Err()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = n.nudgeOne(ctx, addr, reason)
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.Err == nil:
			ok++
			n.sent.WithLabelValues("accepted").Inc()
		case r.Code != 0:
			n.sent.WithLabelValues("refused").Inc()
			log.Warn().Str("peer", r.Addr).Int("code", r.Code).Err(r.Err).Msg("peer refused the nudge")
		default:
			n.sent.WithLabelValues("unreachable").Inc()
			log.Warn().Str("peer", r.Addr).Err(r.Err).Msg("peer not nudged")
		}
	}
	log.Info().Int("peers", len(addrs)).Int("nudged", ok).Msg("peers nudged")
	return results
}

// nudgeOne sends one signed nudge to addr within Timeout.
func (n *Notifier) nudgeOne(ctx context.Context, addr, reason string) Result {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+NudgePath, http.NoBody)
	if err != nil {
		return Result{Addr: addr, Err: fmt.Errorf("nudging %s: %w", addr, err)}
	}
	if err := Sign(req, n.opts.Secret, reason, n.opts.Now()); err != nil {
		return Result{Addr: addr, Err: fmt.Errorf("signing a nudge: %w", err)}
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return Result{Addr: addr, Err: fmt.Errorf("nudging %s: %w", addr, err)}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusAccepted {
		return Result{Addr: addr, Code: resp.StatusCode, Err: fmt.Errorf("nudging %s: %s: %s", addr, resp.Status, trimLine(msg))}
	}
	return Result{Addr: addr, Code: resp.StatusCode}
}

func trimLine(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}
