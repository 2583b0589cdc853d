package ghreport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// Status contexts and the check run name, as they appear on GitHub.
const (
	// ContextValidate is the commit status posted on a pull request's head.
	ContextValidate = "gitgate/validate"
	// ContextDeploy is the commit status posted after an apply on the tracked branch.
	ContextDeploy = "gitgate/deploy"
	// CheckName is the name of the check run posted on a pull request's head.
	CheckName = "gitgate"
	// CommentMarker is the hidden marker that finds the plan comment again.
	CommentMarker = "<!-- gitgate:plan -->"
)

// Log field names, kept constant so that logs can be queried.
const (
	logComponent = "component"
	logPR        = "pr"
	logSHA       = "sha"
	logOp        = "op"
	logState     = "state"
	logContext   = "context"
	logWait      = "wait"
	logAttempt   = "attempt"
	logDropped   = "dropped"
)

// PullRequest is what the Reporter needs to know about a pull request. The
// head SHA is the one the event named; the Evaluator may validate a newer one.
type PullRequest struct {
	// Number is the pull request number.
	Number int
	// HeadSHA is the head commit named by the event.
	HeadSHA string
	// HeadRef is the head branch name (informational).
	HeadRef string
	// BaseRef is the branch the pull request targets.
	BaseRef string
	// BaseSHA is the base branch tip named by the event.
	BaseSHA string
	// Fork is true when the head lives in another repository.
	Fork bool
	// Title is the pull request title (informational).
	Title string
}

// Evaluation is the outcome of validating a pull request head and diffing it
// against the base branch tip.
type Evaluation struct {
	// HeadSHA is the commit that was actually evaluated; reports go on it even
	// if the pull request head has moved since. Empty means PullRequest.HeadSHA.
	HeadSHA string
	// BaseSHA is the base commit the plan was computed against (optional).
	BaseSHA string
	// Diagnostics are the problems found; none means the head is valid.
	Diagnostics []schemas.Diagnostic
	// PlanMarkdown renders the route-level plan in at most maxBytes bytes.
	// Nil when there is no plan (an invalid head).
	PlanMarkdown func(maxBytes int) string
	// Counts is kind -> operation ("create", "update", "delete") -> count.
	Counts map[string]map[string]int
	// Changed is false when the head changes nothing that the gateway serves.
	Changed bool
}

// Evaluator validates a pull request's head against its base and returns the
// diagnostics and the plan. The agent's wiring provides it. An error means the
// head could not be evaluated at all (a fetch failed), not that it is invalid.
type Evaluator func(ctx context.Context, pr PullRequest) (Evaluation, error)

// Options configures a Reporter. Zero values take the defaults named below.
type Options struct {
	// Client talks to GitHub (see NewClient). Required.
	Client *github.Client
	// Owner and Repo name the config repository. Required.
	Owner, Repo string
	// BaseBranch is the tracked branch; pull requests against other
	// branches are ignored. Required.
	BaseBranch string
	// ConfigPath is the config directory inside the repository (the agent's
	// --path); diagnostics' files are relative to it. Default: the root.
	ConfigPath string
	// Evaluate validates and diffs pull request heads. Required for pull
	// request reports; nil disables them.
	Evaluate Evaluator
	// EvaluateTimeout bounds one Evaluate call (fetch, validate, diff).
	// Default 2m.
	EvaluateTimeout time.Duration
	// Logger receives the Reporter's logs. Default: a disabled logger.
	Logger zerolog.Logger
	// DeployStatuses posts the gitgate/deploy status after each apply.
	// Default false: no deploy reports.
	DeployStatuses bool
	// Deployments creates a GitHub Deployment and its status after each
	// apply, instead of the gitgate/deploy status.
	Deployments bool
	// Environment is the Deployment environment. Default "production".
	Environment string
	// DetailsURL is linked from statuses and check runs (optional).
	DetailsURL string
	// QueuePRs bounds the pull requests waiting for a report; the oldest is
	// dropped when full. Default 256.
	QueuePRs int
	// QueueDeploys bounds the deploy reports waiting; the oldest is dropped
	// when full. Default 64.
	QueueDeploys int
	// RequestTimeout bounds each GitHub request. Default 15s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the tries of one request (5xx, timeouts, rate
	// limits). Default 4.
	MaxAttempts int
	// MaxRateLimitWait is the longest wait for a rate limit to reset; a
	// longer one fails the request. Default 10m.
	MaxRateLimitWait time.Duration
	// BaseBackoff is the first retry delay after a 5xx or a timeout; it
	// doubles per attempt, with full jitter, up to 30s. Default 500ms.
	BaseBackoff time.Duration
}

// Reporter posts gitgate's reports to GitHub from a single worker (Run).
// Its methods are safe for concurrent use and never block on GitHub.
type Reporter struct {
	opts Options
	log  zerolog.Logger
	q    *queue

	posted    *postedMemo
	comments  *commentCache
	checksOff atomic.Bool
	warned    sync.Map // op kind -> struct{}: warnings logged once

	// sleep waits d or until ctx ends; tests may replace it.
	sleep func(ctx context.Context, d time.Duration) error

	stopCtx context.Context
	stop    context.CancelFunc
	mu      sync.Mutex
	running bool
	done    chan struct{}
}

// New checks o and returns a Reporter. Start its worker with Run.
func New(o Options) (*Reporter, error) {
	var missing []string
	if o.Client == nil {
		missing = append(missing, "Client")
	}
	if o.Owner == "" {
		missing = append(missing, "Owner")
	}
	if o.Repo == "" {
		missing = append(missing, "Repo")
	}
	if o.BaseBranch == "" {
		missing = append(missing, "BaseBranch")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ghreport: options missing %s", strings.Join(missing, ", "))
	}
	if o.Environment == "" {
		o.Environment = "production"
	}
	if o.QueuePRs <= 0 {
		o.QueuePRs = 256
	}
	if o.QueueDeploys <= 0 {
		o.QueueDeploys = 64
	}
	if o.EvaluateTimeout <= 0 {
		o.EvaluateTimeout = 2 * time.Minute
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 4
	}
	if o.MaxRateLimitWait <= 0 {
		o.MaxRateLimitWait = 10 * time.Minute
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 500 * time.Millisecond
	}
	o.ConfigPath = strings.Trim(o.ConfigPath, "/")
	if o.ConfigPath == "." {
		o.ConfigPath = ""
	}
	stopCtx, stop := context.WithCancel(context.Background())
	r := &Reporter{
		opts:     o,
		log:      o.Logger.With().Str(logComponent, "ghreport").Logger(),
		q:        newQueue(o.QueuePRs, o.QueueDeploys),
		posted:   newPostedMemo(4096),
		comments: newCommentCache(1024),
		sleep:    sleepCtx,
		stopCtx:  stopCtx,
		stop:     stop,
		done:     make(chan struct{}),
	}
	return r, nil
}

// Run works through the queue until ctx ends or Close is called, and
// returns nil then. It may be called once.
func (r *Reporter) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("ghreport: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	defer close(r.done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unhook := context.AfterFunc(r.stopCtx, cancel)
	defer unhook()

	for {
		j, ok := r.q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				if n := r.q.len(); n > 0 {
					r.log.Info().Int(logDropped, n).Msg("stopping with reports still queued")
				}
				return nil
			case <-r.q.wake:
				continue
			}
		}
		r.process(ctx, j)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Close stops Run, cancelling a request in flight, and waits for it to
// return. Work still queued is dropped. Close is idempotent.
func (r *Reporter) Close() error {
	r.stop()
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running {
		<-r.done
	}
	return nil
}

func (r *Reporter) process(ctx context.Context, j job) {
	switch {
	case j.deploy != nil:
		if err := r.ReportDeploy(ctx, *j.deploy); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Str(logSHA, j.deploy.SHA).Msg("deploy report incomplete")
		}
	case j.pr != nil:
		if err := r.ReportPullRequest(ctx, *j.pr); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Int(logPR, j.pr.Number).Str(logSHA, j.pr.HeadSHA).Msg("pull request report incomplete")
		}
	}
}

// HandlePullRequest queues a report for a pull_request event when its action
// is opened, synchronize or reopened and it targets the tracked branch of
// the configured repository. It never blocks; a newer event for the same
// pull request replaces one still queued.
func (r *Reporter) HandlePullRequest(_ context.Context, ev *github.PullRequestEvent) {
	pr, ok := r.accept(ev)
	if !ok {
		return
	}
	if dropped, was := r.q.pushPR(pr); was {
		r.log.Warn().Int(logPR, dropped).Msg("report queue full: dropped the oldest pull request")
	}
}

func (r *Reporter) accept(ev *github.PullRequestEvent) (PullRequest, bool) {
	if ev == nil || ev.PullRequest == nil || r.opts.Evaluate == nil || r.stopCtx.Err() != nil {
		return PullRequest{}, false
	}
	switch ev.GetAction() {
	case "opened", "synchronize", "reopened":
	default:
		return PullRequest{}, false
	}
	p := ev.PullRequest
	base := p.GetBase()
	if base.GetRef() != r.opts.BaseBranch {
		r.log.Debug().Int(logPR, p.GetNumber()).Str("base", base.GetRef()).Msg("ignoring pull request against another branch")
		return PullRequest{}, false
	}
	if full := ev.GetRepo().GetFullName(); full != "" && !strings.EqualFold(full, r.opts.Owner+"/"+r.opts.Repo) {
		r.log.Debug().Int(logPR, p.GetNumber()).Str("repo", full).Msg("ignoring pull request on another repository")
		return PullRequest{}, false
	}
	head := p.GetHead()
	pr := PullRequest{
		Number:  p.GetNumber(),
		HeadSHA: head.GetSHA(),
		HeadRef: head.GetRef(),
		BaseRef: base.GetRef(),
		BaseSHA: base.GetSHA(),
		Title:   p.GetTitle(),
	}
	if hr, br := head.GetRepo(), base.GetRepo(); hr != nil && br != nil && hr.GetID() != br.GetID() {
		pr.Fork = true
	}
	if pr.Number <= 0 || !isSHA(pr.HeadSHA) {
		r.log.Warn().Int(logPR, pr.Number).Msg("ignoring pull_request event without a number or head sha")
		return PullRequest{}, false
	}
	return pr, true
}

// Deploy is the outcome of one apply attempt on the tracked branch.
type Deploy struct {
	// SHA is the commit that was applied or rejected.
	SHA string
	// Version is what the gateway serves after a successful apply.
	Version string
	// Failed is true when the apply was rejected.
	Failed bool
	// Reason is a one-line reason for a failure.
	Reason string
}

// CommitApplied queues the gitgate/deploy success report "live as
// <version>" for sha. It never blocks.
func (r *Reporter) CommitApplied(_ context.Context, sha, version string) {
	r.queueDeploy(Deploy{SHA: sha, Version: version})
}

// CommitFailed queues the gitgate/deploy failure report for sha, with the
// first diagnostic or err as the reason. It never blocks.
func (r *Reporter) CommitFailed(_ context.Context, sha string, diags []schemas.Diagnostic, err error) {
	reason := "apply failed"
	switch {
	case len(diags) == 1:
		reason = "invalid: " + diags[0].String()
	case len(diags) > 1:
		reason = fmt.Sprintf("invalid: %d problems; first: %s", len(diags), diags[0].String())
	case err != nil:
		reason = "apply failed: " + err.Error()
	}
	r.queueDeploy(Deploy{SHA: sha, Failed: true, Reason: redact(reason)})
}

func (r *Reporter) queueDeploy(d Deploy) {
	if (!r.opts.DeployStatuses && !r.opts.Deployments) || !isSHA(d.SHA) || r.stopCtx.Err() != nil {
		return
	}
	if dropped, was := r.q.pushDeploy(d); was {
		r.log.Warn().Str(logSHA, dropped).Msg("report queue full: dropped the oldest deploy report")
	}
}

// isSHA accepts a full hex object name (SHA-1 or SHA-256).
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// warnOnce logs a warning the first time a kind of problem happens, and at
// debug level afterwards, so a read-only token does not flood the log.
func (r *Reporter) warnOnce(kind string) *zerolog.Event {
	if _, seen := r.warned.LoadOrStore(kind, struct{}{}); seen {
		return r.log.Debug()
	}
	return r.log.Warn()
}
