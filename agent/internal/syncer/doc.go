// Package syncer owns the agent's reconcile loop (Loop): it turns the
// tracked branch's tip into the gateway's running config and keeps it there.
// It reads the config through a source.Source (gitsrc for a Git repository)
// and knows revisions only as opaque strings.
//
// Triggers (poll timer with jitter, webhook nudges, `agent sync`) land in a
// one-slot mailbox where the newest wins, so a burst during a sync causes
// exactly one more sync. One sync: head check, fetch only when moved, read
// the config path from the object store, validate with the same loader as
// `agent validate`, build the bundle, store it, push it with If-Match, and
// record the attempt. Every pass also compares the gateway's running digest
// with the desired one and re-pushes on a difference (self-heal).
//
// Rollback pins the agent to a commit and marks the commit rolled back from
// as bad; the pin lifts when a new good commit reaches the branch, unless it
// is held until Resume. Transient failures (Git or gateway unreachable) back
// off exponentially with jitter; the loop never exits on a sync failure.
package syncer
