// Package webhook owns the agent's GitHub webhook receiver
// (POST /webhooks/github). It checks X-Hub-Signature-256 (HMAC-SHA256 over
// the raw body, constant time) before parsing anything, refuses unsigned and
// SHA-1-only deliveries, caps the body, drops replayed delivery IDs, answers
// at once and does the work in the background.
//
// A push is only a nudge: the handler never trusts the payload's SHA or URL,
// it tells the sync loop to resolve the branch tip itself. pull_request
// events go to a PullRequestReporter on a bounded queue owned by the Handler.
package webhook
