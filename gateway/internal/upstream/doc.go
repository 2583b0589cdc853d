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
package upstream
