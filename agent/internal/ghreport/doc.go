// Package ghreport reports gitgate's work on GitHub: for a pull request
// against the tracked branch it posts the commit status gitgate/validate, an
// annotated check run "gitgate" and one plan comment that is edited in place
// on every push; after an apply on the tracked branch it posts the commit
// status gitgate/deploy (or a GitHub Deployment and its statuses).
//
// A Reporter never blocks its callers on GitHub: HandlePullRequest,
// CommitApplied and CommitFailed only put work in a bounded queue (the newest
// event per pull request wins) that Run works through. Every request has a
// timeout, 5xx answers are retried with exponential backoff and jitter, and
// rate limits (403 with X-RateLimit-Remaining: 0, secondary limits, 429) are
// waited out until X-RateLimit-Reset or Retry-After, bounded and honoring the
// context. A read-only token (a fork's pull request) or a personal token that
// may not create check runs degrades to what can be reported; it never stops
// the agent.
//
// The package does not import the agent's loader, diff or git packages: the
// agent wires an Evaluator that validates and diffs a pull request's head.
// auth.go holds the helpers that build a *github.Client from a token (env
// GITGATE_GITHUB_TOKEN or a file), a GitHub Enterprise base URL, or a GitHub
// App installation (AppTransport).
package ghreport
