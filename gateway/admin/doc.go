// Package admin owns the gateway's admin API: the HTTP server on the admin
// Unix socket that takes bundles from the agent, answers what runs, and the
// optional watch route with the broadcaster behind it.
//
// Routes (Go 1.22 method patterns; JSON bodies use the types of package
// client; every error answer is a client.ErrorBody):
//
//	PUT /v1/bundle   strict decode (unknown fields and trailing data: 400;
//	                 over MaxBundleBytes: 413); apiVersion and version checked
//	                 (422); If-Match: "<version>" or * against the running
//	                 version (412 with currentVersion and ETag); the running
//	                 digest again: 200 {"unchanged":true} with the running
//	                 version and nothing done; else Runtime.Apply (which
//	                 checks the digest): *schemas.InvalidError -> 422 with
//	                 every diagnostic, recorded as the last rejected attempt
//	                 and sent to watchers; success -> saved as last-known-good,
//	                 200 client.Applied with ETag.
//	GET /v1/bundle   the running bundle, ETag "<version>", If-None-Match ->
//	                 304; 404 before any.
//	GET /v1/status   client.Status: version, digest, source, applied at,
//	                 routes, upstream health, breakers, last rejected, ready,
//	                 and with a Store the last-known-good copy (version
//	                 saved, error of the last save such as a full disk).
//	GET /healthz     200 while the process serves.
//	GET /readyz      200 once a config is loaded, 503 before.
//	GET /metrics     Prometheus text of Options.Gatherer.
//	GET /v1/watch    only with Options.Watch; see below.
//
// Writes are serialized: one apply at a time. Bodies are read before the
// lock is taken, so a slow writer does not hold it.
//
// The watch route has two forms. Long-poll (?since=<version>&timeout=30s,
// timeout capped at MaxWatchTimeout): 200 with a client.WatchState at once
// when the running version differs from since, else when it changes; 304
// Not Modified (ETag: the running version) when the timeout ends first. A
// rejection does not end a long-poll: it follows versions only. Server-sent
// events (Accept: text/event-stream): a stream starts with a "reset" event
// carrying the current state, then "applied" and "rejected" events; ids grow
// by one per event and start from the process's start time in microseconds,
// so they also grow across restarts. Last-Event-ID resumes after that event
// when it is still among the last EventBuffer events; an id that is older or
// unknown gets a "reset" instead, like Kubernetes' 410 Gone. Comment lines
// are sent every Heartbeat. Waiters block in their own handler on a channel
// that each publish closes: the broadcaster starts no goroutine, and a
// client that goes away leaves nothing behind. Shutdown ends every stream.
// Watchers are capped (MaxWatchers, then 503) and each SSE write has a
// deadline, so a remote client that stops reading cannot pin a handler.
//
// The read-only routes can also be served on a TCP address
// (ObserveHandler); PUT /v1/bundle is never registered there (405).
//
// The wire types live in the client subpackage, which the agent imports.
package admin
