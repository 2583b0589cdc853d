// Package webhook owns the agent's GitHub webhook receiver
// (POST /webhooks/github). It checks X-Hub-Signature-256 (HMAC-SHA256 over
// the raw body, constant time) before parsing anything, refuses unsigned and
// SHA-1-only deliveries, drops replayed delivery IDs, answers at once and
// does the work in the background. Until the signature is checked the body
// is a stranger's: a declared length over the cap is refused unread, a
// longer body is cut at the cap, and only a few bodies are read at once
// (others get 503 with Retry-After), so unauthenticated senders can make
// the agent hold at most MaxUnverified × MaxBodyBytes.
//
// A push is only a nudge: the handler never trusts the payload's SHA or URL,
// it tells the sync loop to resolve the branch tip itself. pull_request
// events go to a PullRequestReporter on a bounded queue owned by the Handler.
package webhook
