package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/fleetpin"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas"
)

// The fleet's rollback state (issue 17) lives as marks in the config
// source when the source keeps marks (gitsrc: tags in the repository,
// read in the head check's listing). Every pass adopts the source's pin and
// bad marks into the local state, and applies the pinned commit when this
// replica does not serve it yet. A pin this replica could not write is
// local (status pinScope "local").

// followMarks adopts the source's pin and bad marks, and applies a fleet
// pin this replica does not serve yet. Called with syncMu held, right after
// a successful Update.
func (l *Loop) followMarks(ctx context.Context, start time.Time) error {
	marks, ok := l.opts.Source.(source.Marks)
	if !ok {
		return nil
	}
	ms, err := marks.ReadMarks(ctx, "")
	if err != nil {
		return fmt.Errorf("reading the fleet's pin: %w", err)
	}
	fs := fleetpin.Read(ms)
	bad := slices.Sorted(maps.Keys(fs.Bad))
	st := l.opts.Store.State()
	// Most passes change nothing: write the state only when they do.
	newBad := slices.ContainsFunc(bad, func(rev string) bool { return !st.IsBad(rev) && (fs.Pin == nil || fs.Pin.SHA != rev) })
	adopt := fs.Pin != nil && fs.PinID != st.LiftedPinID && (st.Pin == nil || st.Pin.ID != fs.PinID)
	drop := fs.Pin == nil && st.Pin != nil && st.Pin.Scope == bundle.PinFleet
	if !newBad && !adopt && !drop {
		return l.followPin(ctx, st, start)
	}
	var adopted, dropped bool
	st, err = l.opts.Store.Update(func(s *bundle.State) {
		for _, rev := range bad {
			if !s.IsBad(rev) && (fs.Pin == nil || fs.Pin.SHA != rev) {
				s.Bad = append(s.Bad, rev)
			}
		}
		switch {
		case fs.Pin != nil && fs.PinID != s.LiftedPinID && (s.Pin == nil || s.Pin.ID != fs.PinID):
			p := fs.Pin
			s.Pin = &bundle.Pin{SHA: p.SHA, Reason: p.Reason, Hold: p.Hold, From: p.From, BranchHead: p.BranchHead,
				Since: p.At, By: p.By, Scope: bundle.PinFleet, ID: fs.PinID}
			s.Bad = slices.DeleteFunc(s.Bad, func(v string) bool { return v == p.SHA })
			s.LastAttempted = "" // look at the branch tip again under the pin
			adopted = true
		case fs.Pin == nil && s.Pin != nil && s.Pin.Scope == bundle.PinFleet:
			// Resumed or lifted by fix-forward elsewhere.
			s.Pin, s.LastAttempted = nil, ""
			dropped = true
		}
	})
	if err != nil {
		return fmt.Errorf("recording the fleet's pin: %w", err)
	}
	switch {
	case adopted:
		l.log.Info().Str("pin", st.Pin.SHA).Str("by", st.Pin.By).Bool("hold", st.Pin.Hold).Msg("the fleet is pinned: following the pin in the repository")
	case dropped:
		l.log.Info().Msg("the fleet's pin is gone from the repository: tracking the branch")
	}
	return l.followPin(ctx, st, start)
}

// followPin applies the fleet's pin when this replica does not serve it.
func (l *Loop) followPin(ctx context.Context, st bundle.State, start time.Time) error {
	if p := st.Pin; p != nil && p.Scope == bundle.PinFleet && st.LastApplied != p.SHA {
		if _, err := l.applyPinned(ctx, p.SHA, "fleet-pin", "", start); err != nil {
			return fmt.Errorf("following the fleet's pin to %s: %w", source.Short(p.SHA), err)
		}
	}
	return nil
}

// liftPin lifts pin p because good commit head reached the branch
// (fix-forward). A fleet pin is deleted from the source with a
// compare-and-swap, so exactly one replica deletes it; the others find it
// gone (a conflict) or cannot push, and carry on all the same: the rule
// that lifts it is the same on every replica. Called with syncMu held.
func (l *Loop) liftPin(ctx context.Context, p *bundle.Pin, head string) error {
	log := l.log.With().Str("pin", p.SHA).Str("version", head).Logger()
	if p.Scope == bundle.PinFleet {
		if marks, ok := l.opts.Source.(source.Marks); ok {
			err := fleetpin.Lift(ctx, marks, p.ID)
			l.countPinWrite("lift", err)
			switch {
			case err == nil:
				log.Info().Msg("a new good commit reached the branch: the fleet's pin is lifted in the repository")
			case errors.Is(err, source.ErrMarkConflict):
				log.Info().Msg("a new good commit reached the branch: another replica lifted or replaced the fleet's pin first")
			default:
				log.Info().Err(err).Msg("a new good commit reached the branch: pin lifted here; another replica with push rights deletes it in the repository")
			}
		}
	} else {
		log.Info().Msg("a new good commit reached the branch: pin lifted")
	}
	if _, err := l.opts.Store.Update(func(s *bundle.State) {
		s.Pin = nil
		if p.ID != "" {
			s.LiftedPinID = p.ID
		}
	}); err != nil {
		return fmt.Errorf("lifting the pin: %w", err)
	}
	l.notify(Event{Kind: EventPinLifted, Version: head, From: p.SHA, Trigger: "fix-forward", Reason: p.Reason})
	return nil
}

func (l *Loop) countPinWrite(op string, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, source.ErrMarkConflict):
		result = "conflict"
	case errors.Is(err, source.ErrMarksReadOnly):
		result = "readonly"
	default:
		result = "error"
	}
	l.opts.Metrics.PinWrites.WithLabelValues(op, result).Inc()
}

// applyPinned serves commit sha: its bundle from the store, or rebuilt,
// verified and validated from the source, pushed to the gateway and
// recorded as applied, with note (if any) in its history entry. Called
// with syncMu held.
func (l *Loop) applyPinned(ctx context.Context, sha, trigger, note string, start time.Time) (*schemas.Bundle, error) {
	b, err := l.opts.Store.Bundle(sha)
	if err != nil {
		if !errors.Is(err, bundle.ErrNotFound) {
			l.log.Warn().Err(err).Str("version", sha).Msg("stored bundle unusable; rebuilding from Git")
		}
		if _, ierr := l.opts.Source.Info(ctx, sha); ierr != nil {
			if _, _, uerr := l.opts.Source.Update(ctx); uerr != nil {
				return nil, uerr
			}
		}
		if b, _, err = l.build(ctx, sha); err != nil {
			return nil, err
		}
	}
	if err := l.opts.Store.SaveBundle(b); err != nil {
		return nil, err
	}
	if _, err := l.push(ctx, b); err != nil {
		return nil, err
	}
	l.desired = b
	now := l.opts.Now().UTC()
	if _, err := l.opts.Store.Update(func(s *bundle.State) {
		s.LastApplied, s.LastAppliedDigest, s.LastAppliedAt = sha, b.Digest, now
		s.Applied = append(slices.DeleteFunc(s.Applied, func(v string) bool { return v == sha }), sha)
	}); err != nil {
		return nil, fmt.Errorf("recording applied version: %w", err)
	}
	l.opts.Metrics.Applied.Reset()
	l.opts.Metrics.Applied.WithLabelValues(sha).Set(1)
	e := bundle.Entry{Time: start.UTC(), SHA: sha, Author: b.Source.Author, Subject: b.Source.Subject, Trigger: trigger, Result: bundle.ResultRollback,
		Digest: b.Digest, DurationMS: l.opts.Now().Sub(start).Milliseconds(), Error: note}
	if err := l.opts.Store.Append(e); err != nil {
		return nil, fmt.Errorf("recording history: %w", err)
	}
	l.log.Info().Str("version", sha).Str("trigger", trigger).Msg("pinned commit applied")
	return b, nil
}

// RollbackResult says what a rollback did.
type RollbackResult struct {
	// SHA is the commit now served and pinned.
	SHA string `json:"sha"`
	// From is the commit rolled back from, now marked bad ("" if none).
	From string `json:"from,omitempty"`
	// Pin is the pin now in force; its Scope says whether every replica
	// obeys it (fleet) or this one only (local, ScopeReason says why).
	Pin bundle.Pin `json:"pin"`
}

// ErrPinConflict: another rollback or resume changed the fleet's pin
// between this replica's read and its write; nothing was changed.
var ErrPinConflict = errors.New("another rollback or resume changed the fleet's pin first; nothing was changed (see `agent status`, then retry)")

// Rollback applies the commit rev names (a unique SHA prefix; "" means the
// previously applied commit) and pins to it. When the source keeps marks,
// the pin and the bad mark of the commit rolled back from are written
// there first, in one compare-and-swap, so every replica follows; when
// that write is not allowed, the pin is local and its result says why. A
// concurrent rollback that wrote first makes this one fail with
// ErrPinConflict. The bundle comes from the store or is rebuilt, verified
// and validated from the source. Unknown or ambiguous revisions and
// invalid or unverified commits return errors wrapping
// source.ErrUnknownRevision, source.ErrAmbiguousRevision,
// *schemas.InvalidError or the signature errors, and change nothing.
func (l *Loop) Rollback(ctx context.Context, rev string, hold bool, reason string) (RollbackResult, error) {
	return l.rollback(ctx, rev, hold, reason, "rollback", "")
}

// rollback is Rollback, recorded in history with trigger (and, for any
// trigger but "rollback", reason as the entry's note); a non-empty
// applied must still be the applied version, or nothing is done and the
// error wraps ErrSuperseded.
func (l *Loop) rollback(ctx context.Context, rev string, hold bool, reason, trigger, applied string) (RollbackResult, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	start := l.opts.Now()
	marks, canMark := l.opts.Source.(source.Marks)
	var fs fleetpin.State
	scopeReason := "the config source cannot keep a pin"
	if canMark {
		// A fresh look at the fleet's pin, for the compare-and-swap.
		if _, _, err := l.opts.Source.Update(ctx); err != nil {
			canMark, scopeReason = false, "reading the fleet's pin: "+err.Error()
		} else if ms, err := marks.ReadMarks(ctx, ""); err != nil {
			canMark, scopeReason = false, err.Error()
		} else {
			fs = fleetpin.Read(ms)
		}
	}
	st := l.opts.Store.State()
	if applied != "" && st.LastApplied != applied {
		return RollbackResult{}, fmt.Errorf("%w: %s is no longer the applied version (%s is)", ErrSuperseded, applied, st.LastApplied)
	}
	var sha string
	if rev == "" {
		for i := len(st.Applied) - 1; i >= 0; i-- {
			if v := st.Applied[i]; v != st.LastApplied && !st.IsBad(v) && !fs.IsBad(v) {
				sha = v
				break
			}
		}
		if sha == "" {
			return RollbackResult{}, ErrNoPrevious
		}
	} else {
		var err error
		if sha, err = l.opts.Source.Resolve(ctx, rev); err != nil {
			if _, _, uerr := l.opts.Source.Update(ctx); uerr == nil {
				sha, err = l.opts.Source.Resolve(ctx, rev)
			}
			if err != nil {
				return RollbackResult{}, err
			}
		}
	}
	// Build (and so verify) before writing anything: a pin to a commit
	// that fails verification or validation is refused.
	if _, err := l.opts.Store.Bundle(sha); err != nil {
		if _, _, err := l.build(ctx, sha); err != nil {
			return RollbackResult{}, fmt.Errorf("rolling back to %s: %w", source.Short(sha), err)
		}
	}
	if reason == "" {
		reason = "rollback"
	}
	from := st.LastApplied
	if from == sha {
		from = ""
	}
	pin := bundle.Pin{SHA: sha, Reason: reason, Hold: hold, From: from, BranchHead: st.Head, Since: start.UTC(), By: l.opts.Replica, Scope: bundle.PinLocal}
	if canMark {
		fp := fleetpin.Pin{SHA: sha, From: from, BranchHead: st.Head, Hold: hold, Reason: reason, By: l.opts.Replica, At: pin.Since}
		id, err := fleetpin.Set(ctx, marks, fs, fp)
		l.countPinWrite("set", err)
		switch {
		case errors.Is(err, source.ErrMarkConflict):
			return RollbackResult{}, fmt.Errorf("rolling back to %s: %w: %w", source.Short(sha), ErrPinConflict, err)
		case err != nil:
			scopeReason = err.Error()
			l.log.Warn().Err(err).Msg("the pin could not be written to the repository: it holds for this replica only")
		default:
			pin.Scope, pin.ID, scopeReason = bundle.PinFleet, id, ""
		}
	}
	pin.ScopeReason = scopeReason
	note := ""
	if trigger != "rollback" {
		note = reason
	}
	b, err := l.applyPinned(ctx, sha, trigger, note, start)
	if err != nil {
		if pin.Scope == bundle.PinFleet {
			// The fleet is pinned; this replica retries on its next pass.
			_, _ = l.opts.Store.Update(func(s *bundle.State) { s.Pin = &pin })
			return RollbackResult{}, fmt.Errorf("rolling back to %s: the pin is in the repository and every replica follows it, but applying it here failed (retried at the next check): %w", source.Short(sha), err)
		}
		return RollbackResult{}, fmt.Errorf("rolling back to %s: %w", source.Short(sha), err)
	}
	if _, err := l.opts.Store.Update(func(s *bundle.State) {
		s.Pin = &pin
		s.Bad = slices.DeleteFunc(s.Bad, func(v string) bool { return v == sha })
		if from != "" && !s.IsBad(from) {
			s.Bad = append(s.Bad, from)
		}
	}); err != nil {
		return RollbackResult{}, fmt.Errorf("recording the pin: %w", err)
	}
	l.log.Info().Str("version", sha).Str("from", from).Bool("hold", hold).Str("scope", pin.Scope).Str("digest", b.Digest).Msg("rolled back and pinned")
	kind := EventRollback
	if trigger == "auto-rollback" {
		kind = EventAutoRollback
	}
	l.notify(Event{Kind: kind, Version: sha, Author: b.Source.Author, Subject: b.Source.Subject, From: from, Trigger: trigger, Reason: reason})
	return RollbackResult{SHA: sha, From: from, Pin: pin}, nil
}

// Resume lifts the pin and re-evaluates the branch tip (a commit marked
// bad is still not applied by itself). A fleet pin is deleted from the
// source first, with a compare-and-swap; an agent that may not push cannot
// lift it. It returns ErrNotPinned when there is no pin.
func (l *Loop) Resume(ctx context.Context) error {
	l.syncMu.Lock()
	p := l.opts.Store.State().Pin
	if p == nil {
		l.syncMu.Unlock()
		return ErrNotPinned
	}
	if p.Scope == bundle.PinFleet {
		marks, _ := l.opts.Source.(source.Marks)
		var err error
		if marks == nil {
			err = errors.New("the config source cannot keep a pin")
		} else {
			err = fleetpin.Lift(ctx, marks, p.ID)
			l.countPinWrite("resume", err)
		}
		switch {
		case errors.Is(err, source.ErrMarkConflict):
			l.syncMu.Unlock()
			l.Trigger("pin-changed")
			return fmt.Errorf("resuming: %w: %w", ErrPinConflict, err)
		case err != nil:
			l.syncMu.Unlock()
			return fmt.Errorf("resuming: the pin is kept in the repository for the whole fleet and this agent cannot delete it (give it --push-token-file or --push-ssh-key-file, or run `agent resume --repo URL` with your own Git credentials): %w", err)
		}
	}
	_, err := l.opts.Store.Update(func(s *bundle.State) {
		s.Pin, s.LastAttempted = nil, ""
		if p.ID != "" {
			s.LiftedPinID = p.ID
		}
	})
	l.syncMu.Unlock()
	if err != nil {
		return fmt.Errorf("lifting the pin: %w", err)
	}
	l.log.Info().Str("scope", p.Scope).Msg("pin lifted: tracking the branch")
	l.notify(Event{Kind: EventPinLifted, From: p.SHA, Trigger: "resume", Reason: p.Reason})
	l.Trigger("resume")
	return nil
}
