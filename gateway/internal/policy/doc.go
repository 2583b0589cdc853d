// Package policy owns the request policies of the gateway: rate limits
// (local, or fleet-wide in Redis), API keys, JWT bearer tokens, CORS and client IP allow/deny lists.
//
// Compile turns the policies of a schemas.Config into a Set, resolving every
// secret reference ({env: NAME}, {file: PATH}) and public key on the way, and
// refusing anything it cannot use with a *schemas.InvalidError whose
// diagnostics name the field path (and the reference, never the secret).
// Set.Wrap puts the policies a route names in front of the route's handler.
//
// Each kind lives in one file that registers itself in its init function
// (registerKind, registry.go) under the JSON name of its field in
// schemas.Policy. Adding a kind is that file, the field and its settings
// type in schemas (config.go, with an applyDefaults method when it has
// defaults and secret tags on sensitive fields), and its definition in
// schemas/config.cue; rules both the agent and the gateway check go in
// schemas/rules.
//
// Behaviour an operator can rely on:
//
//   - Order: a route's policies run in the order listed, except that cors
//     policies always run first, so a browser preflight (which never carries
//     credentials) is answered before any auth policy and so that 401/403/429
//     answers still carry CORS headers a script can read.
//   - Status codes: 401 when credentials are missing or not valid (with
//     WWW-Authenticate), 403 when the caller is known but not allowed (a client
//     address refused by ipAllow/ipDeny, a CORS preflight from an origin not
//     listed, or a valid JWT whose audience is not one of the configured
//     audiences), 429 when a rate limit is exhausted. Error bodies are JSON:
//     {"error":"<code>","message":"<text>"}.
//   - Rate limits: one token-bucket store per rateLimit policy, shared by
//     every route that attaches the policy; key "route" gives each route its
//     own bucket. A store keeps at most maxKeys buckets (sharded LRU; idle
//     buckets that have refilled are dropped first), and it survives a new
//     Compile when the policy's settings are unchanged. With store redis
//     the buckets live in Redis (ratelimit_redis.go), the local store is
//     the onStoreError fallback, and Sets with the same redis settings
//     share one client.
//   - API keys: the presented key is hashed with SHA-256 and compared with
//     every stored hash in constant time; the key is removed from the request
//     before it goes upstream and the consumer name is sent in ConsumerHeader
//     (a client-sent value of that header is always removed).
//   - JWT: only the configured algorithms are accepted (alg "none" and
//     algorithm confusion fail), exp and nbf are checked with Leeway, iss and
//     aud when configured; ClaimsToHeaders copies claims upstream after
//     removing any client-sent copy of those headers.
//   - Client address: the one the runtime decided for the request (package
//     clientip: the peer, or the right-most untrusted X-Forwarded-For entry
//     behind a trusted proxy), read from the request's ResponseWriter;
//     Options.ClientIP when the writer carries none.
package policy
