// Package h1 serves HTTP/1.1 with github.com/valyala/fasthttp through the
// gateway's one http.Handler core (runtime.Engine and the wrappers around
// it), so that routing, policies, the proxy, metrics and the access log
// stay one implementation whichever server reads the request.
//
// fasthttp reads and writes each connection in one goroutine with one read
// per request, where net/http adds a background read per request. The
// exchange adapter converts a fasthttp.RequestCtx into a pooled
// *http.Request and http.ResponseWriter. The handler runs inline, on
// fasthttp's connection goroutine (inline.go): a response that neither
// flushes nor grows past a small buffer is handed back whole and written
// by fasthttp with its Content-Length; one that does is written to the
// connection by the adapter (fasthttp's header serialisation, then
// Content-Length, chunked or close-delimited framing), and the connection
// is then served on by fasthttp's ServeConn. A request that may hijack its
// connection (an Upgrade header, CONNECT) runs its handler on a worker
// goroutine instead, so that fasthttp can hand the connection over while
// the handler runs (WebSocket), and streams through fasthttp's body
// stream.
//
// fasthttp is lenient where net/http is strict; screen.go refuses, before
// the handler, what net/http refuses (header names and values, Host,
// Transfer-Encoding, conflicting Content-Length, Expect, obs-fold, request
// targets), with net/http's answers.
//
// Known differences from net/http, documented rather than hidden:
//   - a client that closes its connection while the handler waits for the
//     upstream is noticed within 200 ms by a peek that consumes nothing
//     (net/http notices it at once with its background read), and on TLS
//     connections only when the answer is written;
//   - 1xx interim answers other than 101 (103 Early Hints) are not sent;
//   - the Date header is fasthttp's own (the server's clock, to the
//     second): fasthttp drops a Date the handler sets, so a proxied
//     answer carries the gateway's Date, not the upstream's (net/http
//     keeps the handler's);
//   - only a request with an Upgrade header, or CONNECT, can be hijacked
//     (net/http hijacks any);
//   - a request with both Content-Length and chunked framing is answered
//     and its connection closed (net/http reads on), and any repeated
//     Content-Length, obs-fold, bare LF and chunked HTTP/1.0 requests are
//     refused (net/http accepts them);
//   - the handler runs once the first 8 KiB of a body of known length (or
//     the whole of a shorter one) has arrived, within ReadHeaderTimeout;
//   - the header block is bounded by 64 KiB (net/http: 1 MiB), the size of
//     each connection's read buffer;
//   - an answer carries at most 32 trailer fields (maxTrailers): fasthttp's
//     cost per trailer name grows with the headers already set;
//   - empty lines before a request line are skipped, as RFC 9112 section
//     2.2 advises (net/http refuses the request);
//   - a request trailer field that fasthttp forbids (a longer list than
//     net/http's: Authorization, Cookie, Content-Type, X-Forwarded-* and
//     others) ends the body with an error, at most maxTrailers names of a
//     request's trailer fields reach Request.Trailer, and a trailer name
//     written with white space before its colon is read without it
//     (net/http keeps the space in the name);
//   - an empty Content-Type is not written, and a header field that the
//     answer also names in Trailer is sent in the trailer section only.
//
// FuzzServerDeliversWhatNetHTTPDelivers holds the rest to net/http: the
// same bytes on one connection each, every request this server hands its
// handler is the one net/http hands its own, in the same place.
package h1
