package syncer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// Gateway is the part of the gateway admin client the loop uses;
// *client.Client implements it.
type Gateway interface {
	Put(ctx context.Context, b *schemas.Bundle, ifMatch string) (client.Applied, error)
	Status(ctx context.Context) (client.Status, error)
}

// Reporter is told about commits the loop applied or refused (the GitHub
// integration implements it). Calls run on a background worker, never on
// the loop; when the worker is busy, reports are dropped and logged.
type Reporter interface {
	CommitApplied(ctx context.Context, sha, version string)
	CommitFailed(ctx context.Context, sha string, diags []schemas.Diagnostic, err error)
}

// Options configure a Loop.
type Options struct {
	// Source is where the config comes from (gitsrc.Source for a Git
	// repository). Required.
	Source source.Source
	// Store is the state directory. Required.
	Store *bundle.Store
	// Gateway receives bundles. Required.
	Gateway Gateway
	// Path is the config directory inside the repository. Default: the root.
	Path string
	// Limits bound what is read and validated. Zero: load.DefaultLimits.
	Limits load.Limits
	// Validator validates commits. Nil: load.Files in this process, with
	// no bound on the evaluation of CUE files.
	Validator source.Validator
	// PollInterval between head checks, jittered by ±10%. Default 30s.
	PollInterval time.Duration
	// BackoffMin is the first retry delay after a transient failure.
	// Default 1s. It doubles up to BackoffMax (default 5m), with jitter.
	BackoffMin time.Duration
	// BackoffMax caps the retry delay. Default 5m. A retry never waits
	// longer than one (jittered) poll interval either.
	BackoffMax time.Duration
	// Timeout bounds one sync pass. Default 2m.
	Timeout time.Duration
	// HealInterval is how often the gateway's digest is compared with the
	// desired one between sync passes (a cheap status call over the admin
	// socket, no Git), so a gateway restarted without its last-known-good
	// is healed within it and status notices a gateway that went down.
	// Zero: only during sync passes.
	HealInterval time.Duration
	// Reporter is told about applied and failed commits. Nil: none.
	Reporter Reporter
	// Notifier is told about applies, rejections, rollbacks, lifted pins,
	// heals and failing syncs (README "Notifications"). Nil: none.
	Notifier Notifier
	// Metrics records counters; nil: a private set that is not exported.
	Metrics *Metrics
	// Logger logs with constant field names.
	Logger zerolog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Replica names this agent in the fleet pins it writes ("who"), such
	// as a pod name. Default: the host name.
	Replica string
}

// Errors of Rollback and Resume that a user must act on.
var (
	ErrNoPrevious = errors.New("no earlier applied commit to roll back to")
	ErrNotPinned  = errors.New("not pinned")
)

// Loop is the reconcile loop. Create it with New, start it with Run; the
// methods are safe to call from other goroutines (the control socket).
type Loop struct {
	opts    Options
	log     zerolog.Logger
	mailbox chan string
	reports chan func(context.Context)

	// syncMu serializes sync passes, rollbacks and resumes.
	syncMu  sync.Mutex
	desired *schemas.Bundle // guarded by syncMu

	mu        sync.Mutex // guards the fields below and done
	started   uint64
	completed uint64
	done      chan struct{} // closed and replaced when a sync completes
	health    health
	baker     Baker // nil: no bake after an apply
}

// health is what status shows about the outside world.
type health struct {
	SourceErr      string
	GatewayErr     string
	GatewayVersion string
	GatewayDigest  string
	GatewaySeen    bool
	// GatewayWarning is the gateway's last warning about an apply that
	// succeeded, such as a last-known-good copy it could not save.
	GatewayWarning string
	LastSyncAt     time.Time
	LastSuccessAt  time.Time
	LastError      string
	// FailingSince is when the current streak of failed passes began;
	// zero after a success.
	FailingSince time.Time
	Failures     int
	NextSyncAt   time.Time
}

// New checks opts and returns a Loop that is not yet running.
func New(opts Options) (*Loop, error) {
	if opts.Source == nil || opts.Store == nil || opts.Gateway == nil {
		return nil, errors.New("syncer: Source, Store and Gateway are required")
	}
	opts.Path = strings.Trim(path.Clean("/"+opts.Path), "/")
	if opts.PollInterval <= 0 {
		opts.PollInterval = 30 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Replica == "" {
		opts.Replica, _ = os.Hostname()
	}
	return &Loop{
		opts:    opts,
		log:     opts.Logger.With().Str("component", "syncer").Logger(),
		mailbox: make(chan string, 1),
		reports: make(chan func(context.Context), 64),
		done:    make(chan struct{}),
	}, nil
}

// Trigger asks for a sync without blocking. Triggers coalesce: the newest
// reason wins, and a trigger during a sync causes exactly one more sync.
func (l *Loop) Trigger(reason string) {
	for {
		select {
		case l.mailbox <- reason:
			return
		default:
		}
		select {
		case <-l.mailbox: // drop the older reason; newest wins
		default:
		}
	}
}

// SyncAndWait triggers a sync and waits until a sync that started after the
// call has finished, or ctx ends. It returns the status after that sync.
func (l *Loop) SyncAndWait(ctx context.Context, reason string) (Status, error) {
	l.mu.Lock()
	target := l.started + 1
	l.mu.Unlock()
	l.Trigger(reason)
	for {
		l.mu.Lock()
		doneCount, ch := l.completed, l.done
		l.mu.Unlock()
		if doneCount >= target {
			return l.Status(ctx), nil
		}
		select {
		case <-ctx.Done():
			return Status{}, fmt.Errorf("waiting for sync: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Run syncs at once, then on every trigger and poll, until ctx ends. It
// returns nil when ctx ends; it never returns on a sync failure. It waits
// for its report worker before returning.
func (l *Loop) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.reportWorker(ctx)
	}()
	defer wg.Wait()

	l.syncMu.Lock()
	l.loadDesired(ctx)
	l.syncMu.Unlock()

	timer := time.NewTimer(0)
	defer timer.Stop()
	var healC <-chan time.Time
	if l.opts.HealInterval > 0 {
		healTicker := time.NewTicker(l.opts.HealInterval)
		defer healTicker.Stop()
		healC = healTicker.C
	}
	// The pass the timer makes at once is the start pass, not a poll.
	first := true
	for {
		reason := "poll"
		select {
		case <-ctx.Done():
			return nil
		case <-healC:
			l.healBetweenPasses(ctx)
			continue
		case <-timer.C:
		case reason = <-l.mailbox:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if first && reason == "poll" {
			reason = "start"
		}
		first = false
		err := l.syncPass(ctx, reason)
		wait := l.nextDelay(err)
		// The pass counts as completed only now, so that SyncAndWait's
		// status shows its failure count and next sync time.
		l.mu.Lock()
		l.health.NextSyncAt = l.opts.Now().Add(wait)
		l.completed++
		close(l.done)
		l.done = make(chan struct{})
		l.mu.Unlock()
		timer.Reset(wait)
	}
}

// healBetweenPasses re-pushes the desired bundle when the gateway runs
// another digest. Failures are left to the next pass's backoff: they are
// logged at debug level and shown in status.
func (l *Loop) healBetweenPasses(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.heal(ctx); err != nil {
		l.log.Debug().Err(err).Msg("heal check between sync passes failed")
	}
}

// nextDelay is the jittered poll interval after a success, or the
// exponential backoff with jitter after a transient failure.
func (l *Loop) nextDelay(err error) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.health.Failures = 0
		return jitter(l.opts.PollInterval, 0.1)
	}
	l.health.Failures++
	d := l.opts.BackoffMin
	for i := 1; i < l.health.Failures && d < l.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, l.opts.BackoffMax)
	return min(jitter(d, 0.2), l.opts.PollInterval+jitter(l.opts.PollInterval, 0.1))
}

// jitter returns d scaled by a random factor in [1-f, 1+f].
func jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}

func (l *Loop) reportWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case fn := <-l.reports:
			fn(ctx)
		}
	}
}

func (l *Loop) report(fn func(context.Context)) {
	if l.opts.Reporter == nil {
		return
	}
	select {
	case l.reports <- fn:
	default:
		l.log.Warn().Msg("reporter busy: commit report dropped")
	}
}

// loadDesired restores the bundle of the last applied commit, from the
// store or rebuilt from Git. Called with syncMu held.
func (l *Loop) loadDesired(ctx context.Context) {
	st := l.opts.Store.State()
	if st.LastApplied == "" {
		return
	}
	b, err := l.opts.Store.Bundle(st.LastApplied)
	if err != nil {
		b, err = l.rebuild(ctx, st.LastApplied)
	}
	if err != nil {
		l.log.Warn().Err(err).Str("version", st.LastApplied).Msg("cannot restore the desired bundle; the next commit will replace it")
		return
	}
	l.desired = b
}

// rebuild reads, validates and bundles revision rev, updating the source
// first when rev is not local.
func (l *Loop) rebuild(ctx context.Context, rev string) (*schemas.Bundle, error) {
	if _, err := l.opts.Source.Info(ctx, rev); err != nil {
		if _, _, uerr := l.opts.Source.Update(ctx); uerr != nil {
			return nil, fmt.Errorf("rebuilding %s: %w", source.Short(rev), uerr)
		}
	}
	b, _, err := l.build(ctx, rev)
	return b, err
}

// build reads, verifies and validates revision rev. A user-fixable problem
// is a *schemas.InvalidError (or a signature error); others are transient.
func (l *Loop) build(ctx context.Context, rev string) (*schemas.Bundle, source.Info, error) {
	src := l.opts.Source
	info, err := src.Info(ctx, rev)
	if err != nil {
		return nil, info, err
	}
	if err := src.Verify(ctx, rev); err != nil {
		return nil, info, &userError{err}
	}
	res, err := source.Validate(ctx, src, rev, l.opts.Path, l.opts.Validator, l.opts.Limits)
	if err != nil {
		return nil, info, err
	}
	if len(res.Diagnostics) > 0 {
		return nil, info, &schemas.InvalidError{Diagnostics: prefixFiles(res.Diagnostics, l.opts.Path)}
	}
	b, err := schemas.NewBundle(rev, schemas.Source{
		Repo: src.Location(), Ref: src.Ref(), Path: l.opts.Path,
		Commit: rev, Author: info.Author, Time: info.Time, Subject: info.Subject,
	}, *res.Config, l.opts.Now())
	if err != nil {
		return nil, info, fmt.Errorf("building bundle of %s: %w", source.Short(rev), err)
	}
	return b, info, nil
}

// prefixFiles makes diagnostic file names relative to the repository root.
func prefixFiles(diags []schemas.Diagnostic, dir string) []schemas.Diagnostic {
	if dir == "" || dir == "." {
		return diags
	}
	out := make([]schemas.Diagnostic, len(diags))
	for i, d := range diags {
		if d.File != "" {
			d.File = dir + "/" + d.File
		}
		out[i] = d
	}
	return out
}

// userError marks an error a user must fix (not retried).
type userError struct{ err error }

func (e *userError) Error() string { return e.err.Error() }
func (e *userError) Unwrap() error { return e.err }

// isUser reports whether err needs a user's fix rather than a retry.
func isUser(err error) bool {
	var inv *schemas.InvalidError
	var ue *userError
	var rej *client.RejectedError
	return errors.As(err, &inv) || errors.As(err, &ue) || errors.As(err, &rej)
}

// diagnosticsOf returns the diagnostics carried by err, if any.
func diagnosticsOf(err error) []schemas.Diagnostic {
	var inv *schemas.InvalidError
	if errors.As(err, &inv) {
		return inv.Diagnostics
	}
	var rej *client.RejectedError
	if errors.As(err, &rej) {
		return rej.Diagnostics
	}
	return nil
}
