// Package proxy is the per-route forwarding handler of the data plane: a
// Route picks a weighted backend upstream (sticky when the route has a
// split), a target of that upstream's pool, applies the route's transforms
// (path strip/add/regex/template rewrite, host rewrite, request and
// response header edits) and forwards with one httputil.ReverseProxy per
// upstream (Rewrite hook, never Director), retrying failed attempts within
// the route's timeouts and retry budget. An attempt to a target of the
// pool's synchronous HTTP/1.1 path takes the direct path (direct.go): the
// same hooks and the same behaviour as ReverseProxy, held to it by
// TestDirectMatchesReverseProxy, without ReverseProxy's copy of the
// request. The Route's context is its own (context.go): the synchronous
// path interrupts its connection through it without an allocation.
//
// Behaviour worth knowing:
//   - The incoming Host is passed upstream unchanged unless rewrite.host is
//     set (as Envoy and Traefik do); X-Forwarded-Host carries it too.
//   - X-Forwarded-For/-Proto/-Host from the client are kept only when the
//     peer is in Options.TrustedProxies; otherwise they are replaced. Headers
//     named in Connection are dropped before the proxy adds its own.
//   - A request's trailer fields are not forwarded (nor their Trailer
//     announcement), as Envoy without enable_trailers and nginx do: they
//     come after the header that routing and policies judged, and an
//     upstream that merged them into its header would let a client set
//     what the gateway removes. Response trailers are passed on.
//   - X-Request-Id is kept from a trusted proxy when sane (visible ASCII,
//     at most 200 bytes) and generated otherwise (correlate.go); it goes
//     upstream and onto every answer. A valid W3C traceparent is passed on
//     unchanged with its tracestate, from any peer; an invalid one is
//     dropped with its tracestate. No span is started or exported.
//   - Route.Timeout covers the whole exchange except upgraded (WebSocket)
//     connections and text/event-stream responses, which live as long as
//     both sides keep them open. PerTryTimeout runs until response headers.
//   - Bodies up to MaxRetryBody bytes are buffered when the route may retry,
//     so a retry can replay them; larger bodies are streamed and never
//     retried.
//   - Every attempt is handed back to its pool (in-flight count, outlier
//     detection, breaker) and the retry budget on every exit path, including
//     ReverseProxy's http.ErrAbortHandler panic when the body copy fails; a
//     client that leaves counts as no failure of the upstream.
//   - An Observation (Options.Observe) is the request's one allocation of
//     gateway state: its client, decided once (package clientip) and read
//     by policies and the Route alike, the Route's exchange, and its access
//     log line and metric, which count and log each request once, with its
//     route, upstream and the policy that answered, "none" where there is
//     none; an upstream failure carries its cause.
//   - What the proxy answers itself (404 no route, 413 body too large, 502
//     upstream failed, 503 no healthy target or breaker open, 504 timeout)
//     is written by package reply, in the gateway's one answer shape (a
//     gRPC status for a gRPC call).
//   - A backend may be a failover upstream (failover.go): each attempt goes
//     to one of its groups, chosen by the groups' health, ejection and
//     breaker state; a retry moves to the next group.
//   - A gRPC call (reply.IsGRPC) is never buffered nor retried; its deadline
//     is the earlier of grpc-timeout and Route.Timeout, sent upstream as
//     grpc-timeout; cut after its response began, it ends with
//     DEADLINE_EXCEEDED trailers rather than a reset (grpc.go).
package proxy
