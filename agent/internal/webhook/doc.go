// Package webhook owns the agent's webhook receiver: POST
// /webhooks/{github,gitlab,gitea,bitbucket}. Each Git host is one file
// implementing the host interface (which headers name the event and the
// delivery, how the secret is checked, how a payload reads as repository,
// refs and kind); the Handler does the rest the same way for all of them.
//
// It checks the delivery's signature (GitHub's X-Hub-Signature-256, Gitea's
// and Forgejo's hex HMAC, Bitbucket's X-Hub-Signature, all HMAC-SHA256 over
// the raw body) or GitLab's X-Gitlab-Token, in constant time, before parsing
// anything; it refuses unsigned deliveries, drops replayed delivery IDs,
// answers at once and does the work in the background. Until the signature
// is checked the body is a stranger's: a declared length over the cap is
// refused unread, a longer body is cut at the cap, and only a few bodies are
// read at once, across all routes (others get 503 with Retry-After), so
// unauthenticated senders can make the agent hold at most MaxUnverified ×
// MaxBodyBytes.
//
// A push is only a nudge: the handler never trusts the payload's SHA or URL,
// it tells the sync loop to resolve the branch tip itself. GitHub
// pull_request events go to a PullRequestReporter on a bounded queue owned
// by the Handler; other hosts' merge and pull requests are logged only.
package webhook
