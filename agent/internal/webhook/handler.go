package webhook

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// Secret is the webhook secret, the same for every host's route: the
	// HMAC key of GitHub, Gitea/Forgejo and Bitbucket signatures, and the
	// value GitLab sends as X-Gitlab-Token. Required.
	Secret []byte
	// Branch is the tracked branch; pushes to other refs are ignored.
	Branch string
	// Repo, when set ("owner/name"; see ourRepo for other hosts' names),
	// makes events from other repositories ignored. Empty: any repository.
	Repo string
	// Nudge asks the sync loop to resolve the branch tip and sync. It must
	// not block. Required.
	Nudge func(reason string)
	// PullRequests gets pull_request events. Nil: they are logged only.
	PullRequests PullRequestReporter
	// MaxBodyBytes caps a delivery. Default DefaultMaxBodyBytes (1 MiB). A
	// delivery that declares more is refused before its body is read.
	MaxBodyBytes int64
	// MaxUnverified bounds the deliveries whose bodies are being read
	// before their signature is checked; more at once are answered 503
	// with Retry-After. Default DefaultMaxUnverified (4). Unauthenticated
	// memory is thus at most MaxUnverified × MaxBodyBytes.
	MaxUnverified int
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

// DefaultMaxBodyBytes is the default cap on a delivery's body. GitHub caps
// payloads at 25 MB, but the events the agent reads are small: a push
// carries at most 20 commits with their file lists, a pull_request event a
// few tens of KB. 1 MiB holds a push of 20 commits touching thousands of
// files each, and bounds what an unauthenticated sender makes the agent
// hold. A push refused for its size is still picked up by the next poll.
const DefaultMaxBodyBytes = 1 << 20

// DefaultMaxUnverified is the default number of delivery bodies read at
// once before their signature is checked. GitHub sends a hook's deliveries
// a few at a time.
const DefaultMaxUnverified = 4

// retryAfterSeconds is the Retry-After of a 503 answered when
// MaxUnverified bodies are being read.
const retryAfterSeconds = 10

// Handler serves webhook deliveries: ServeHTTP GitHub's, Register every
// host's route. It owns one background worker for
// pull_request events; Close stops and waits for it.
type Handler struct {
	opts       Options
	deliveries *prometheus.CounterVec
	// unverified counts bodies being read before their signature is
	// checked; slots holds one token per such body.
	unverified prometheus.Gauge
	slots      chan struct{}
	// busyLog is Logger sampled, for refusals a flood would repeat.
	busyLog zerolog.Logger

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
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxUnverified <= 0 {
		opts.MaxUnverified = DefaultMaxUnverified
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
			Help: "Webhook deliveries by host, event (\"other\" for events not read) and result.",
		}, []string{"host", "event", "result"}),
		unverified: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitgate_agent_webhook_unverified_bodies",
			Help: "Webhook delivery bodies being read before their signature is checked.",
		}),
		slots:   make(chan struct{}, opts.MaxUnverified),
		busyLog: opts.Logger.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Second}),
		seen:    make(map[string]*list.Element),
		order:   list.New(),
		queue:   make(chan *github.PullRequestEvent, opts.QueueSize),
		done:    make(chan struct{}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{h.deliveries, h.unverified} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering webhook metrics: %w", err)
			}
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

// ServeHTTP serves GitHub deliveries, whatever the path: it is what
// Register mounts at POST /webhooks/github.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(gitHub{}, w, r)
}

// Register mounts POST /webhooks/{github,gitlab,gitea,bitbucket} on mux.
// Every route checks its host's signature with the one Options.Secret and
// shares the bounds on unverified bodies, the replay memory and metrics.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, hst := range hosts {
		mux.Handle("POST /webhooks/"+hst.name(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.serve(hst, w, r)
		}))
	}
}

// serve handles one delivery in hst's dialect: bounded read, signature,
// replay check, then a nudge, a queued pull request or an ignore line.
func (h *Handler) serve(hst host, w http.ResponseWriter, r *http.Request) {
	event, id := hst.event(r.Header)
	if event == "" {
		event = "unknown"
	}
	a := answerer{h: h, host: hst.name(), event: h.eventLabel(hst, event)}
	log := h.opts.Logger.With().Str("host", hst.name()).Str("event", event).Str("delivery", id).Logger()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.answer(w, "bad_method", http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, ok := h.readVerified(w, r, hst, a, log)
	if !ok {
		return
	}
	if id != "" && !h.firstSeen(hst.name()+":"+id) {
		log.Info().Msg("webhook replay ignored")
		a.answer(w, "duplicate", http.StatusOK, "duplicate delivery ignored")
		return
	}
	d, err := hst.parse(event, body)
	if err != nil {
		log.Warn().Err(err).Msg("webhook payload does not parse")
		a.answer(w, "bad_payload", http.StatusBadRequest, "payload does not parse")
		return
	}
	ref := strings.Join(d.refs, " ")
	switch d.kind {
	case kindPing:
		a.answer(w, "pong", http.StatusOK, "pong")
	case kindPush:
		switch {
		case !h.ourRepo(d.repo):
			h.ignore(w, a, log, d.repo, ref, "other_repo", "other repository ignored")
		case slices.Contains(d.refs, "refs/heads/"+h.opts.Branch):
			h.opts.Nudge("webhook")
			log.Info().Str("repo", d.repo).Str("ref", ref).Msg("push to the tracked branch: sync nudged")
			a.answer(w, "nudged", http.StatusAccepted, "sync queued")
		case len(d.refs) > 0 && !slices.ContainsFunc(d.refs, func(ref string) bool { return !strings.HasPrefix(ref, "refs/tags/") }):
			h.ignore(w, a, log, d.repo, ref, "tag", "tag push ignored")
		default:
			h.ignore(w, a, log, d.repo, ref, "other_branch", "other branch ignored")
		}
	case kindPullRequest:
		switch {
		case !h.ourRepo(d.repo):
			h.ignore(w, a, log, d.repo, ref, "other_repo", "other repository ignored")
		case d.pullRequest == nil:
			// Reports go through GitHub's API only; the event is known
			// and left for a later reporter.
			noun := "pull request"
			if hst.name() == "gitlab" {
				noun = "merge request"
			}
			h.ignore(w, a, log, d.repo, ref, "pull_request", noun+" ignored: reports are posted to GitHub only")
		default:
			select {
			case h.queue <- d.pullRequest:
				a.answer(w, "queued", http.StatusAccepted, "queued")
			default:
				log.Warn().Msg("pull request queue full: event dropped")
				a.answer(w, "queue_full", http.StatusServiceUnavailable, "busy, redeliver later")
			}
		}
	default:
		h.ignore(w, a, log, d.repo, ref, "other_event", "event ignored")
	}
}

// eventLabel is event when hst reads it, else "other": the header is
// unauthenticated, and each value would be a metric series for good.
func (h *Handler) eventLabel(hst host, event string) string {
	if slices.Contains(hst.events(), event) {
		return event
	}
	return "other"
}

// answerer writes answers for one delivery and counts them.
type answerer struct {
	h           *Handler
	host, event string
}

func (a answerer) answer(w http.ResponseWriter, result string, code int, msg string) {
	a.h.deliveries.WithLabelValues(a.host, a.event, result).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// ourRepo reports whether a delivery's repository ("owner/name", GitLab's
// "group/subgroup/project", Bitbucket Server's "PROJECT/slug") is the one
// Options.Repo names. The hosts match these names case-insensitively and
// payloads spell them as created (Codertocat/Hello-World).
func (h *Handler) ourRepo(fullName string) bool {
	return h.opts.Repo == "" || strings.EqualFold(fullName, h.opts.Repo)
}

// ignore answers 202 to a delivery that asks nothing of the agent, and
// leaves an info line saying why.
func (h *Handler) ignore(w http.ResponseWriter, a answerer, log zerolog.Logger, repo, ref, reason, msg string) {
	log.Info().Str("repo", repo).Str("ref", ref).Str("reason", reason).Msg("webhook delivery ignored")
	a.answer(w, reason, http.StatusAccepted, msg)
}

// readVerified reads the body of a delivery and checks its signature. The
// body is unauthenticated until then, so what a sender can make the agent
// hold is bounded: a declared length over MaxBodyBytes is refused before
// reading, a body that grows past it is cut, and at most MaxUnverified
// bodies are read at once (others are answered 503 at once). On false the
// answer is written.
func (h *Handler) readVerified(w http.ResponseWriter, r *http.Request, hst host, a answerer, log zerolog.Logger) ([]byte, bool) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		log.Warn().Int64("bytes", r.ContentLength).Int64("max_bytes", h.opts.MaxBodyBytes).Msg("webhook refused: body over the cap")
		// Close after answering, or net/http would read the body to keep
		// the connection alive.
		w.Header().Set("Connection", "close")
		a.answer(w, "too_large", http.StatusRequestEntityTooLarge, "body too large")
		return nil, false
	}
	select {
	case h.slots <- struct{}{}:
	default:
		h.busyLog.Warn().Str("host", a.host).Str("event", a.event).Int("max_unverified", h.opts.MaxUnverified).Msg("webhook refused: too many deliveries being read")
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		w.Header().Set("Connection", "close")
		a.answer(w, "busy", http.StatusServiceUnavailable, "busy, redeliver later")
		return nil, false
	}
	h.unverified.Inc()
	defer func() {
		h.unverified.Dec()
		<-h.slots
	}()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn().Int64("max_bytes", h.opts.MaxBodyBytes).Msg("webhook refused: body over the cap")
			a.answer(w, "too_large", http.StatusRequestEntityTooLarge, "body too large")
			return nil, false
		}
		a.answer(w, "bad_body", http.StatusBadRequest, "reading body failed")
		return nil, false
	}
	if err := hst.verify(h.opts.Secret, r.Header, body); err != nil {
		log.Warn().Err(err).Msg("webhook refused")
		code := http.StatusUnauthorized
		if errors.Is(err, ErrSHA1Only) {
			code = http.StatusForbidden
		}
		a.answer(w, "bad_signature", code, err.Error())
		return nil, false
	}
	return body, true
}
