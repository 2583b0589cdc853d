// Package compress compresses a route's responses with zstd or gzip
// (github.com/klauspost/compress), negotiated by the request's
// Accept-Encoding (RFC 9110 section 12.5.3: q-values, "*", identity).
//
// Wrap puts a compressing ResponseWriter in front of a route. It decides
// once, when the status is written, from the response's own headers:
// it compresses a response whose media type is listed, whose
// Content-Length is absent (a stream) or at least MinBytes, and never one
// that is already encoded, marked Cache-Control no-transform, a 1xx, 204,
// 206 or 304, an event stream (text/event-stream: each event must reach
// the client when it is written, and a compressor would hold it), or the
// answer to a HEAD, a Range request, a request saying no-transform, a
// protocol upgrade or a gRPC call. A response it compresses loses its
// Content-Length and the digests of the identity body, has a strong ETag
// made weak, and carries Vary: Accept-Encoding; so does a response it
// could have compressed for another client.
//
// Nothing is buffered beyond the encoder's own window: a Flush of the
// handler (ReverseProxy flushes every write of a response without
// Content-Length) flushes the encoder and then the connection, so a
// streamed body reaches the client as the upstream sends it. Encoders are
// pooled per algorithm and level (a zstd encoder costs hundreds of KiB to
// build); BenchmarkCompress measures the allocations of a pooled request.
// The encoders in use at once are bounded in memory by DefaultBudget; a
// response beyond it is not compressed.
package compress
