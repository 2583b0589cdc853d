package syncer

import (
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// EventKind names something the loop did that people may want to hear
// about (README "Notifications").
type EventKind string

// Events the loop tells its Notifier about.
const (
	// EventApplied: a new commit now runs on the gateway (not a no-op).
	EventApplied EventKind = "applied"
	// EventRejected: a commit failed verification or validation, or the
	// gateway refused it; the running config stays.
	EventRejected EventKind = "rejected"
	// EventRollback: an operator rolled this replica (and, with a fleet
	// pin, the fleet) back. Replicas that follow the fleet's pin do not
	// send it again.
	EventRollback EventKind = "rollback"
	// EventAutoRollback: a regression during a bake window rolled back.
	EventAutoRollback EventKind = "auto-rollback"
	// EventPinLifted: a pin was lifted, by a new good commit (fix-forward,
	// Trigger "fix-forward") or by `agent resume` (Trigger "resume").
	EventPinLifted EventKind = "pin-lifted"
	// EventDriftHealed: the gateway ran another config and the desired one
	// was pushed again.
	EventDriftHealed EventKind = "drift-healed"
	// EventSyncFailed: a sync pass failed transiently (Git or gateway
	// unreachable). Sent on every failed pass with FailingSince; a
	// notifier decides after how long it is worth telling anyone.
	EventSyncFailed EventKind = "sync-failed"
	// EventSyncRecovered: the first successful pass after failed ones;
	// FailingSince is when the failures started.
	EventSyncRecovered EventKind = "sync-recovered"
)

// Event is one thing the loop did. Fields that do not apply are zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind `json:"event"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Repo (redacted) and Branch are what the loop tracks.
	Repo   string `json:"repo,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Replica names this agent (Options.Replica).
	Replica string `json:"replica,omitempty"`
	// Version is the commit concerned: applied, rejected, rolled back to,
	// re-pushed, or the branch tip that lifted a pin.
	Version string `json:"version,omitempty"`
	// Author and Subject of Version, when known.
	Author  string `json:"author,omitempty"`
	Subject string `json:"subject,omitempty"`
	// From is the commit rolled back from, the pin lifted, or (drift
	// healed) the version the gateway ran instead.
	From string `json:"from,omitempty"`
	// Trigger is what started it (poll, webhook, rollback, resume, ...).
	Trigger string `json:"trigger,omitempty"`
	// Reason is the rollback's reason, or the error of a rejection or a
	// failed sync.
	Reason string `json:"reason,omitempty"`
	// Diagnostics of a rejected commit (file:line).
	Diagnostics []schemas.Diagnostic `json:"diagnostics,omitempty"`
	// FailingSince is the first failure of the current streak (sync-failed,
	// sync-recovered).
	FailingSince time.Time `json:"failingSince,omitzero"`
}

// Notifier is told about the loop's events. Notify is called on the loop's
// goroutine (during a sync pass, a rollback or a resume) and must return at
// once: queue, never deliver, inside it.
type Notifier interface {
	Notify(Event)
}

// notify stamps e with the loop's repo, branch, replica and the time, and
// hands it to the notifier, if any.
func (l *Loop) notify(e Event) {
	if l.opts.Notifier == nil {
		return
	}
	e.Repo, e.Branch, e.Replica = l.opts.Source.Location(), l.opts.Source.Tracking(), l.opts.Replica
	if e.Time.IsZero() {
		e.Time = l.opts.Now().UTC()
	}
	l.opts.Notifier.Notify(e)
}
