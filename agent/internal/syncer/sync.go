package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/safety"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// syncPass runs one pass: look at the branch, handle a new head, then heal
// the gateway. A non-nil error is transient and makes the loop back off.
func (l *Loop) syncPass(ctx context.Context, reason string) error {
	l.mu.Lock()
	l.started++
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()

	start := l.opts.Now()
	err := l.syncHead(ctx, reason, start)
	if err == nil {
		err = l.heal(ctx)
	}
	l.mu.Lock()
	l.health.LastSyncAt = l.opts.Now()
	since := l.health.FailingSince
	if err != nil {
		l.health.LastError = err.Error()
		if since.IsZero() {
			since = start
			l.health.FailingSince = since
		}
	} else {
		l.health.LastError = ""
		l.health.LastSuccessAt = l.health.LastSyncAt
		l.health.FailingSince = time.Time{}
	}
	l.mu.Unlock()
	if err != nil {
		l.log.Warn().Err(err).Str("trigger", reason).Msg("sync failed; backing off")
		l.notify(Event{Kind: EventSyncFailed, Trigger: reason, Reason: err.Error(), FailingSince: since.UTC()})
		return err
	}
	if !since.IsZero() {
		l.notify(Event{Kind: EventSyncRecovered, Trigger: reason, FailingSince: since.UTC()})
	}
	l.opts.Metrics.LastSuccess.SetToCurrentTime()
	return nil
}

// syncHead checks the branch and processes its tip when it is new (or its
// last attempt failed transiently).
func (l *Loop) syncHead(ctx context.Context, reason string, start time.Time) error {
	head, fetched, err := l.opts.Source.Update(ctx)
	l.mu.Lock()
	if err != nil {
		l.health.SourceErr = err.Error()
	} else {
		l.health.SourceErr = ""
	}
	l.mu.Unlock()
	if err != nil {
		l.opts.Metrics.HeadChecks.WithLabelValues("error").Inc()
		return fmt.Errorf("checking the branch head: %w", err)
	}
	l.opts.Metrics.HeadChecks.WithLabelValues("ok").Inc()
	if fetched {
		l.opts.Metrics.Fetches.Inc()
		l.opts.Metrics.FetchTime.Observe(l.opts.Now().Sub(start).Seconds())
	}
	if err := schemas.CheckVersion(head); err != nil {
		return fmt.Errorf("checking the branch head: the source returned an unusable revision: %w", err)
	}
	if err := l.followMarks(ctx, start); err != nil {
		return err
	}
	st := l.opts.Store.State()
	sha := head
	if st.Head != sha {
		if st, err = l.opts.Store.Update(func(s *bundle.State) { s.Head = sha }); err != nil {
			return fmt.Errorf("recording the branch head: %w", err)
		}
	}
	if sha == st.LastAttempted && st.LastResult != bundle.ResultFailed && st.LastResult != "" {
		return nil // nothing new on the branch
	}
	return l.processCommit(ctx, head, reason, start, st)
}

// processCommit validates a new branch tip and applies it unless pinned.
func (l *Loop) processCommit(ctx context.Context, head, reason string, start time.Time, st bundle.State) error {
	sha := head
	log := l.log.With().Str("version", sha).Str("trigger", reason).Logger()
	b, info, err := l.build(ctx, head)
	entry := bundle.Entry{Time: start.UTC(), SHA: sha, Author: info.Author, Subject: info.Subject, Trigger: reason}
	if err != nil {
		if !isUser(err) {
			return l.recordFailure(entry, st, fmt.Errorf("reading commit %s: %w", source.Short(sha), err))
		}
		log.Warn().Err(err).Msg("commit rejected; the running config stays")
		return l.record(entry, bundle.ResultRejected, start, "", err)
	}
	// Pinned, or a commit rolled back from: validate and record, do not apply.
	if st.IsBad(sha) {
		log.Info().Msg("branch tip is a commit rolled back from; not applied")
		return l.record(entry, bundle.ResultSkipped, start, b.Digest, errors.New("commit is marked bad (rolled back from); not applied by itself"))
	}
	if p := st.Pin; p != nil {
		if p.Hold || p.BranchHead == sha {
			log.Info().Str("pin", p.SHA).Msg("pinned: valid commit not applied")
			return l.record(entry, bundle.ResultSkipped, start, b.Digest, fmt.Errorf("pinned to %s (%s); not applied", source.Short(p.SHA), p.Reason))
		}
		if err := l.liftPin(ctx, p, sha); err != nil {
			return err
		}
	}
	if err := l.opts.Store.SaveBundle(b); err != nil {
		return l.recordFailure(entry, st, err)
	}
	applied, err := l.push(ctx, b)
	if err != nil {
		if isUser(err) {
			log.Warn().Err(err).Msg("gateway refused the bundle; the running config stays")
			return l.record(entry, bundle.ResultRejected, start, b.Digest, err)
		}
		return l.recordFailure(entry, st, err)
	}
	l.opts.Metrics.PushApply.Observe(l.opts.Now().Sub(start).Seconds())
	result := bundle.ResultApplied
	if applied.Unchanged {
		result = bundle.ResultNoop
	}
	prev := l.desired
	l.desired = b
	if err := l.markApplied(b, result); err != nil {
		return err
	}
	if result == bundle.ResultApplied {
		l.applied(prev, b, st)
	}
	log.Info().Str("result", string(result)).Msg("commit synced")
	return l.record(entry, result, start, b.Digest, nil)
}

// markApplied records b as the running bundle.
func (l *Loop) markApplied(b *schemas.Bundle, result bundle.Result) error {
	now := l.opts.Now().UTC()
	_, err := l.opts.Store.Update(func(s *bundle.State) {
		// A no-op keeps the recorded version only when the recorded config is
		// the same one: after a crash between the gateway's apply and this
		// record, the gateway already runs b, and keeping the older entry would
		// make a restarted agent push that older config back over the head.
		if result != bundle.ResultNoop || s.LastApplied == "" || s.LastAppliedDigest != b.Digest {
			s.LastApplied, s.LastAppliedDigest, s.LastAppliedAt = b.Version, b.Digest, now
			s.Applied = append(slices.DeleteFunc(s.Applied, func(v string) bool { return v == b.Version }), b.Version)
		}
	})
	if err != nil {
		return fmt.Errorf("recording applied version: %w", err)
	}
	l.opts.Metrics.Applied.Reset()
	l.opts.Metrics.Applied.WithLabelValues(b.Version).Set(1)
	return nil
}

// record appends a history entry for a terminal result, updates the last
// attempted revision, and tells the reporter.
func (l *Loop) record(e bundle.Entry, r bundle.Result, start time.Time, digest string, cause error) error {
	e.Result, e.Digest = r, digest
	e.DurationMS = l.opts.Now().Sub(start).Milliseconds()
	if cause != nil {
		e.Error = cause.Error()
		e.Diagnostics = diagnosticsOf(cause)
	}
	l.opts.Metrics.Syncs.WithLabelValues(string(r)).Inc()
	if err := l.opts.Store.Append(e); err != nil {
		return fmt.Errorf("recording history: %w", err)
	}
	if _, err := l.opts.Store.Update(func(s *bundle.State) {
		s.LastAttempted, s.LastAttemptedAt, s.LastResult = e.SHA, e.Time, r
	}); err != nil {
		return fmt.Errorf("recording last attempt: %w", err)
	}
	sha := e.SHA
	switch r {
	case bundle.ResultApplied:
		l.notify(Event{Kind: EventApplied, Version: sha, Author: e.Author, Subject: e.Subject, Trigger: e.Trigger})
	case bundle.ResultRejected:
		l.notify(Event{Kind: EventRejected, Version: sha, Author: e.Author, Subject: e.Subject, Trigger: e.Trigger, Reason: e.Error, Diagnostics: e.Diagnostics})
	}
	switch r {
	case bundle.ResultApplied, bundle.ResultNoop, bundle.ResultRollback:
		l.report(func(ctx context.Context) { l.opts.Reporter.CommitApplied(ctx, sha, sha) })
	case bundle.ResultRejected:
		diags := e.Diagnostics
		l.report(func(ctx context.Context) { l.opts.Reporter.CommitFailed(ctx, sha, diags, cause) })
	}
	return nil
}

// recordFailure records a transient failure once per commit and returns it
// so the loop backs off.
func (l *Loop) recordFailure(e bundle.Entry, st bundle.State, cause error) error {
	if st.LastAttempted != e.SHA || st.LastResult != bundle.ResultFailed {
		e.Result, e.Error = bundle.ResultFailed, cause.Error()
		l.opts.Metrics.Syncs.WithLabelValues(string(bundle.ResultFailed)).Inc()
		if err := l.opts.Store.Append(e); err != nil {
			return errors.Join(cause, fmt.Errorf("recording history: %w", err))
		}
		if _, err := l.opts.Store.Update(func(s *bundle.State) {
			s.LastAttempted, s.LastAttemptedAt, s.LastResult = e.SHA, e.Time, bundle.ResultFailed
		}); err != nil {
			return errors.Join(cause, fmt.Errorf("recording last attempt: %w", err))
		}
	}
	return cause
}

// push sends b to the gateway guarded by If-Match on the version it runs.
// A digest equal to the running one is a no-op without a push. A 412 (the
// gateway changed under us) is retried once with a fresh status.
func (l *Loop) push(ctx context.Context, b *schemas.Bundle) (client.Applied, error) {
	for attempt := 0; ; attempt++ {
		gs, err := l.gatewayStatus(ctx)
		if err != nil {
			return client.Applied{}, err
		}
		if gs.Digest == b.Digest {
			return client.Applied{Version: gs.Version, Digest: gs.Digest, Unchanged: true}, nil
		}
		applied, err := l.opts.Gateway.Put(ctx, b, gs.Version)
		if errors.Is(err, client.ErrPreconditionFailed) && attempt == 0 {
			continue
		}
		if err != nil {
			l.noteGateway(err, "", "")
			return client.Applied{}, fmt.Errorf("pushing %s to the gateway: %w", source.Short(b.Version), err)
		}
		l.noteGateway(nil, applied.Version, applied.Digest)
		l.noteWarning(applied.Warning)
		return applied, nil
	}
}

func (l *Loop) gatewayStatus(ctx context.Context) (client.Status, error) {
	gs, err := l.opts.Gateway.Status(ctx)
	if err != nil {
		l.noteGateway(err, "", "")
		return gs, err // the admin client's errors already say "reading gateway status"
	}
	l.noteGateway(nil, gs.Version, gs.Digest)
	if lkg := gs.LastKnownGood; lkg != nil {
		// The gateway says how its last save went; an older gateway says
		// nothing, and the warning of the last push stands.
		w := ""
		if lkg.Error != "" {
			w = "running " + gs.Version + " but last-known-good is " + orNone(lkg.SavedVersion) + ": " + lkg.Error
		}
		l.noteWarning(w)
	}
	return gs, nil
}

// noteWarning records the gateway's warning ("" clears it) and logs a new
// one.
func (l *Loop) noteWarning(w string) {
	l.mu.Lock()
	changed := l.health.GatewayWarning != w
	l.health.GatewayWarning = w
	l.mu.Unlock()
	if changed && w != "" {
		l.log.Warn().Str("warning", w).Msg("the gateway applied the bundle with a warning")
	}
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func (l *Loop) noteGateway(err error, version, digest string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		var te *client.TransportError
		if errors.As(err, &te) {
			l.health.GatewaySeen = false
			l.opts.Metrics.GatewayVersion.Reset()
		}
		l.health.GatewayErr = err.Error()
		return
	}
	if !l.health.GatewaySeen || l.health.GatewayVersion != version {
		l.opts.Metrics.GatewayVersion.Reset()
		if version != "" {
			l.opts.Metrics.GatewayVersion.WithLabelValues(version).Set(1)
		}
	}
	l.health.GatewaySeen, l.health.GatewayErr = true, ""
	l.health.GatewayVersion, l.health.GatewayDigest = version, digest
}

// heal re-pushes the desired bundle when the gateway runs another digest
// (it restarted from an older file, or someone pushed by hand).
func (l *Loop) heal(ctx context.Context) error {
	if l.desired == nil {
		_, err := l.gatewayStatus(ctx)
		return err
	}
	gs, err := l.gatewayStatus(ctx)
	if err != nil {
		return err
	}
	if gs.Digest == l.desired.Digest {
		return nil
	}
	l.log.Warn().Str("version", l.desired.Version).Str("running", gs.Version).Msg("gateway runs another config: re-pushing the desired bundle")
	start := l.opts.Now()
	_, err = l.push(ctx, l.desired)
	e := bundle.Entry{Time: start.UTC(), SHA: l.desired.Version, Author: l.desired.Source.Author, Subject: l.desired.Source.Subject, Trigger: "heal", Digest: l.desired.Digest,
		Replaced: &bundle.GatewayRun{Version: gs.Version, Digest: gs.Digest}}
	if err != nil {
		if isUser(err) {
			// The gateway refuses what it ran before: record it, do not loop.
			e.Result, e.Error, e.Diagnostics = bundle.ResultRejected, err.Error(), diagnosticsOf(err)
			_ = l.opts.Store.Append(e)
			l.notify(Event{Kind: EventRejected, Version: e.SHA, Author: e.Author, Subject: e.Subject, Trigger: e.Trigger, Reason: e.Error, Diagnostics: e.Diagnostics})
			return nil
		}
		return err
	}
	e.Result, e.DurationMS = bundle.ResultApplied, l.opts.Now().Sub(start).Milliseconds()
	l.opts.Metrics.Syncs.WithLabelValues("healed").Inc()
	if err := l.opts.Store.Append(e); err != nil {
		return fmt.Errorf("recording history: %w", err)
	}
	l.notify(Event{Kind: EventDriftHealed, Version: e.SHA, Author: e.Author, Subject: e.Subject, Trigger: e.Trigger, From: e.Replaced.String()})
	return nil
}

// Status is what `agent status` shows.
type Status struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path,omitempty"`
	// Mode is "tracking" or "pinned".
	Mode string      `json:"mode"`
	Pin  *bundle.Pin `json:"pin,omitempty"`
	// PinScope is "fleet" when the pin is kept in the config repository
	// (every replica obeys it) and "local" when it holds for this replica
	// only; empty when not pinned. PinScopeReason says why a pin is local.
	PinScope       string `json:"pinScope,omitempty"`
	PinScopeReason string `json:"pinScopeReason,omitempty"`
	// BranchHead is the tip seen by the last head check.
	BranchHead      string        `json:"branchHead,omitempty"`
	LastApplied     string        `json:"lastApplied,omitempty"`
	LastAppliedAt   time.Time     `json:"lastAppliedAt,omitzero"`
	LastAttempted   string        `json:"lastAttempted,omitempty"`
	LastAttemptedAt time.Time     `json:"lastAttemptedAt,omitzero"`
	LastResult      bundle.Result `json:"lastResult,omitempty"`
	Bad             []string      `json:"bad,omitempty"`
	// GatewayReachable is false after a failed call to the gateway.
	GatewayReachable bool   `json:"gatewayReachable"`
	GatewayVersion   string `json:"gatewayVersion,omitempty"`
	GatewayDigest    string `json:"gatewayDigest,omitempty"`
	GatewayError     string `json:"gatewayError,omitempty"`
	// GatewayWarning is a problem the gateway reported about a bundle it
	// runs, such as a last-known-good copy it could not save (a restart
	// would come back with an older config).
	GatewayWarning string    `json:"gatewayWarning,omitempty"`
	SourceError    string    `json:"sourceError,omitempty"`
	LastError      string    `json:"lastError,omitempty"`
	LastSyncAt     time.Time `json:"lastSyncAt,omitzero"`
	LastSuccessAt  time.Time `json:"lastSuccessAt,omitzero"`
	NextSyncAt     time.Time `json:"nextSyncAt,omitzero"`
	Failures       int       `json:"consecutiveFailures,omitempty"`
	Syncs          uint64    `json:"syncs"`
	// Bake is the bake in progress after the last apply, or the last
	// one, with its live numbers; nil when none ran.
	Bake *safety.Status `json:"bake,omitempty"`
}

// Status reports the loop's state without touching Git or the gateway.
func (l *Loop) Status(_ context.Context) Status {
	st := l.opts.Store.State()
	l.mu.Lock()
	h := l.health
	syncs := l.completed
	l.mu.Unlock()
	s := Status{
		Repo: l.opts.Source.Location(), Branch: l.opts.Source.Tracking(), Path: l.opts.Path,
		Mode: "tracking", Pin: st.Pin, BranchHead: st.Head,
		LastApplied: st.LastApplied, LastAppliedAt: st.LastAppliedAt,
		LastAttempted: st.LastAttempted, LastAttemptedAt: st.LastAttemptedAt, LastResult: st.LastResult,
		Bad:              st.Bad,
		GatewayReachable: h.GatewaySeen, GatewayVersion: h.GatewayVersion, GatewayDigest: h.GatewayDigest, GatewayError: h.GatewayErr,
		GatewayWarning: h.GatewayWarning,
		SourceError:    h.SourceErr, LastError: h.LastError, LastSyncAt: h.LastSyncAt, LastSuccessAt: h.LastSuccessAt,
		NextSyncAt: h.NextSyncAt, Failures: h.Failures, Syncs: syncs,
	}
	if st.Pin != nil {
		s.Mode = "pinned"
		s.PinScope, s.PinScopeReason = bundle.PinLocal, st.Pin.ScopeReason
		if st.Pin.Scope == bundle.PinFleet {
			s.PinScope = bundle.PinFleet
		}
	}
	s.Bake = l.bakeStatus()
	return s
}

// History returns up to n history entries, newest first (n <= 0: all).
func (l *Loop) History(n int) []bundle.Entry { return l.opts.Store.History(n) }
