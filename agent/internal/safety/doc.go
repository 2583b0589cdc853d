// Package safety owns the agent's verdict on a config version after it is
// applied (DESIGN.md §9, README "Automatic rollback").
//
// Judge is a pure function: from the config's safety thresholds, the new
// version's per-route traffic and its baselines (the previous version's
// traffic on the same routes; on a route split between backends, the other
// backends in the same window), it returns ok, breach (with a reason that
// quotes the numbers) or insufficient traffic. Streak turns verdicts into
// an action: the same kind of breach on consecutive checks.
//
// Baker is the goroutine the agent runs beside the sync loop: told about
// each apply, it reads the gateway's status every check interval during
// the bake window, judges, and on a regression calls a Rollbacker (the
// sync loop's rollback today; the fleet-wide pin later) or only reports,
// as the config's action says. It never acts on too little traffic, never
// twice within a bake window (flapping guard), and starts its counts over
// when the gateway restarted.
package safety
