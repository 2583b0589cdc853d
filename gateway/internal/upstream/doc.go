// Package upstream owns the pools of targets that routes forward to: target
// choice (round robin, least requests by power of two choices, random,
// rendezvous hashing), active health checks, passive outlier ejection and the
// per-upstream circuit breaker, plus the pooled keep-alive transport of each
// pool.
//
// A Pool is built from a schemas.Upstream with defaults applied. Its state
// (health, ejections, breaker, idle connections) lives as long as the Pool,
// so the runtime keeps one Pool across config applies when the upstream's
// settings did not change. Start launches the pool's health checker; Close
// stops it, waits for it and closes idle connections.
//
// The pool's transport sends plain requests to http:// targets itself, in
// the calling goroutine, on kept-alive connections of its own (see
// fastTransport); TLS targets, upgrades, Expect, trailers, streamed or
// large request bodies, and every request of a pool with MaxConnsPerTarget
// go through an http.Transport. A request whose reused connection turns out
// closed by the upstream before any response byte is resent once on a new
// connection when it is replayable (GET, HEAD, OPTIONS, TRACE or an
// Idempotency-Key), as http.Transport does. A pooled connection never
// carries a byte that no request asked for: it is kept only when nothing
// follows the response in its buffer, and every reuse starts with a
// non-blocking peek that drops it on any pending byte or end of stream.
package upstream
