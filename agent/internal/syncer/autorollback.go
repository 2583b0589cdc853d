package syncer

import (
	"context"
	"errors"
	"fmt"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/safety"
	"github.com/gitgate/gitgate/schemas"
)

// ErrSuperseded is returned by AutoRollback when the version to roll back
// from is no longer the applied one.
var ErrSuperseded = errors.New("superseded")

// Baker watches each applied version for its bake window;
// *safety.Baker implements it.
type Baker interface {
	// Applied is told that next replaced prev (nil when unknown). It must
	// not block: the loop calls it during a sync pass.
	Applied(prev, next *schemas.Bundle)
	// BakeStatus is the bake in progress or the last one; nil before any.
	BakeStatus() *safety.Status
}

// SetBaker makes the loop tell b about each apply of a new commit (not
// about rollbacks or heals). Call it before Run.
func (l *Loop) SetBaker(b Baker) {
	l.mu.Lock()
	l.baker = b
	l.mu.Unlock()
}

// applied tells the baker that b replaced prev; prev is read from the
// store when the loop has not applied anything since it started.
func (l *Loop) applied(prev, b *schemas.Bundle, st bundle.State) {
	l.mu.Lock()
	bk := l.baker
	l.mu.Unlock()
	if bk == nil {
		return
	}
	if prev == nil && st.LastApplied != "" && st.LastApplied != b.Version {
		if p, err := l.opts.Store.Bundle(st.LastApplied); err == nil {
			prev = p
		}
	}
	bk.Applied(prev, b)
}

func (l *Loop) bakeStatus() *safety.Status {
	l.mu.Lock()
	bk := l.baker
	l.mu.Unlock()
	if bk == nil {
		return nil
	}
	return bk.BakeStatus()
}

// AutoRollback rolls back from version from to version to after a
// regression found during from's bake window: the same rollback as
// `agent rollback <to>` (from marked bad, a pin that lifts with the next
// good commit), recorded as an "auto-rollback" history entry whose error
// is reason, reported to GitHub as a failure of from with reason, and
// counted in gitgate_agent_auto_rollbacks_total. It implements
// safety.Rollbacker; it returns an error wrapping ErrSuperseded when from
// is no longer the applied version.
func (l *Loop) AutoRollback(ctx context.Context, from, to, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	res, err := l.rollback(ctx, to, false, "auto-rollback: "+reason, "auto-rollback", from)
	if err != nil {
		return fmt.Errorf("rolling back automatically from %s: %w", from, err)
	}
	l.opts.Metrics.AutoRollbacks.Inc()
	l.log.Warn().Str("version", res.SHA).Str("from", from).Str("reason", reason).Msg("rolled back automatically")
	cause := errors.New("rolled back automatically: " + reason)
	l.report(func(ctx context.Context) { l.opts.Reporter.CommitFailed(ctx, from, nil, cause) })
	return nil
}

// ReportRegression records a regression that is not rolled back (action
// "report", or the flapping guard): a history entry "regression" and a
// failure reported to GitHub with reason. It implements safety.Rollbacker.
func (l *Loop) ReportRegression(ctx context.Context, version, reason string) {
	e := bundle.Entry{Time: l.opts.Now().UTC(), SHA: version, Trigger: "regression", Result: bundle.ResultApplied, Error: reason}
	if err := l.opts.Store.Append(e); err != nil {
		l.log.Warn().Err(err).Msg("recording the regression in history")
	}
	cause := errors.New("regression: " + reason)
	l.report(func(ctx context.Context) { l.opts.Reporter.CommitFailed(ctx, version, nil, cause) })
}
