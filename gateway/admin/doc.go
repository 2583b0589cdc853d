// Package admin owns the gateway's admin API: the HTTP server on the admin
// Unix socket that takes bundles from the agent (PUT /v1/bundle), answers
// what runs (GET /v1/bundle, /v1/status, /healthz, /readyz, /metrics), and
// the optional watch route (GET /v1/watch, long-poll and server-sent events)
// with the broadcaster behind it.
//
// Writes are serialized: one apply at a time, each one verified, compiled by
// the Runtime, swapped, persisted as last-known-good, and published to
// watchers. The read-only subset can also be served on a TCP address
// (ObserveHandler); the writing route never is.
//
// The wire types live in the client subpackage, which the agent imports.
package admin
