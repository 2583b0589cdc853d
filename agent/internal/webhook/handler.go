package webhook

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-github/v60/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// PullRequestReporter receives pull_request events (implemented by the PR
// integration). It runs on the Handler's background worker.
type PullRequestReporter interface {
	HandlePullRequest(ctx context.Context, event *github.PullRequestEvent)
}

// Options configure a Handler.
type Options struct {
	// Secret is the webhook secret. Required.
	Secret []byte
	// Branch is the tracked branch; pushes to other refs are ignored.
	Branch string
	// Repo, when set ("owner/name"), makes events from other repositories
	// ignored. Empty: any repository.
	Repo string
	// Nudge asks the sync loop to resolve the branch tip and sync. It must
	// not block. Required.
	Nudge func(reason string)
	// PullRequests gets pull_request events. Nil: they are logged only.
	PullRequests PullRequestReporter
	// MaxBodyBytes caps a delivery. Default 25 MiB (GitHub's maximum).
	MaxBodyBytes int64
	// DedupeSize is how many delivery IDs are remembered. Default 4096.
	DedupeSize int
	// QueueSize bounds pull_request events waiting for the reporter.
	// Default 64.
	QueueSize int
	// Registerer receives the deliveries metric. Nil: not registered.
	Registerer prometheus.Registerer
	// Logger logs deliveries; the secret is never logged.
	Logger zerolog.Logger
}

// Handler serves POST /webhooks/github. It owns one background worker for
// pull_request events; Close stops and waits for it.
type Handler struct {
	opts       Options
	deliveries *prometheus.CounterVec

	mu    sync.Mutex
	seen  map[string]*list.Element
	order *list.List

	queue  chan *github.PullRequestEvent
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Handler and starts its worker.
func New(opts Options) (*Handler, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("webhook: a secret is required (--webhook-secret-file or " + SecretEnv + ")")
	}
	if opts.Nudge == nil {
		return nil, errors.New("webhook: Nudge is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 25 << 20
	}
	if opts.DedupeSize <= 0 {
		opts.DedupeSize = 4096
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	h := &Handler{
		opts: opts,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_agent_webhook_deliveries_total",
			Help: "GitHub webhook deliveries by event and result.",
		}, []string{"event", "result"}),
		seen:  make(map[string]*list.Element),
		order: list.New(),
		queue: make(chan *github.PullRequestEvent, opts.QueueSize),
		done:  make(chan struct{}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(h.deliveries); err != nil {
			return nil, err
		}
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.work()
	return h, nil
}

// Close stops the worker and waits for it; queued events are dropped.
func (h *Handler) Close() error {
	h.cancel()
	<-h.done
	return nil
}

func (h *Handler) work() {
	defer close(h.done)
	for {
		select {
		case <-h.ctx.Done():
			return
		case ev := <-h.queue:
			if h.opts.PullRequests == nil {
				h.opts.Logger.Info().Str("event", "pull_request").Int("pr", ev.GetNumber()).Str("action", ev.GetAction()).Msg("no pull request reporter configured")
				continue
			}
			h.opts.PullRequests.HandlePullRequest(h.ctx, ev)
		}
	}
}

// firstSeen records id and reports whether it was new.
func (h *Handler) firstSeen(id string) bool {
	if id == "" {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.seen[id]; ok {
		h.order.MoveToFront(el)
		return false
	}
	h.seen[id] = h.order.PushFront(id)
	if h.order.Len() > h.opts.DedupeSize {
		old := h.order.Back()
		h.order.Remove(old)
		delete(h.seen, old.Value.(string))
	}
	return true
}

func (h *Handler) answer(w http.ResponseWriter, event, result string, code int, msg string) {
	h.deliveries.WithLabelValues(event, result).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := github.WebHookType(r)
	if event == "" {
		event = "unknown"
	}
	id := github.DeliveryID(r)
	log := h.opts.Logger.With().Str("event", event).Str("delivery", id).Logger()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.answer(w, event, "bad_method", http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.answer(w, event, "too_large", http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.answer(w, event, "bad_body", http.StatusBadRequest, "reading body failed")
		return
	}
	if err := Verify(h.opts.Secret, body, r.Header.Get("X-Hub-Signature-256"), r.Header.Get("X-Hub-Signature")); err != nil {
		log.Warn().Err(err).Msg("webhook refused")
		code := http.StatusUnauthorized
		if errors.Is(err, ErrSHA1Only) {
			code = http.StatusForbidden
		}
		h.answer(w, event, "bad_signature", code, err.Error())
		return
	}
	if !h.firstSeen(id) {
		log.Info().Msg("webhook replay ignored")
		h.answer(w, event, "duplicate", http.StatusOK, "duplicate delivery ignored")
		return
	}
	switch event {
	case "ping", "push", "pull_request":
	default:
		h.answer(w, event, "ignored", http.StatusAccepted, "event ignored")
		return
	}
	payload, err := github.ParseWebHook(event, body)
	if err != nil {
		log.Warn().Err(err).Msg("webhook payload does not parse")
		h.answer(w, event, "bad_payload", http.StatusBadRequest, "payload does not parse")
		return
	}
	switch ev := payload.(type) {
	case *github.PingEvent:
		h.answer(w, event, "pong", http.StatusOK, "pong")
	case *github.PushEvent:
		if h.opts.Repo != "" && ev.GetRepo().GetFullName() != h.opts.Repo {
			log.Info().Str("repo", ev.GetRepo().GetFullName()).Msg("push to another repository ignored")
			h.answer(w, event, "other_repo", http.StatusAccepted, "other repository ignored")
			return
		}
		if ev.GetRef() != "refs/heads/"+h.opts.Branch {
			h.answer(w, event, "other_branch", http.StatusAccepted, "other branch ignored")
			return
		}
		h.opts.Nudge("webhook")
		log.Info().Msg("push to the tracked branch: sync nudged")
		h.answer(w, event, "nudged", http.StatusAccepted, "sync queued")
	case *github.PullRequestEvent:
		if h.opts.Repo != "" && ev.GetRepo().GetFullName() != h.opts.Repo {
			h.answer(w, event, "other_repo", http.StatusAccepted, "other repository ignored")
			return
		}
		select {
		case h.queue <- ev:
			h.answer(w, event, "queued", http.StatusAccepted, "queued")
		default:
			log.Warn().Msg("pull request queue full: event dropped")
			h.answer(w, event, "queue_full", http.StatusServiceUnavailable, "busy, redeliver later")
		}
	default:
		h.answer(w, event, "ignored", http.StatusAccepted, "event ignored")
	}
}
