// Package peers finds the other replicas of a fleet and nudges them to
// re-check Git at once.
//
// A Set lists the peers' webhook listeners, from a headless Service's DNS
// name (dns:NAME:PORT, every A/AAAA record, re-resolved after a short
// cache) or from a static list, and leaves this replica out. A Notifier
// sends a nudge to every peer, bounded in concurrency and time, so a dead
// peer never slows the others. A Receiver serves POST /v1/nudge and
// triggers a sync.
//
// A nudge carries no config, only "check now": each peer reads Git itself.
// It is authenticated with the webhook secret (HMAC-SHA256 over the method,
// path, a timestamp, a random nonce and the reason) and refused outside a
// short window or when replayed. A peer never passes a nudge on, so a
// nudge cannot start a storm.
package peers
