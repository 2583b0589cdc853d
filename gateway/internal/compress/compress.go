package compress

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
)

// Handler compresses the responses of the handler it wraps. It is
// immutable and safe for concurrent use.
type Handler struct {
	next     http.Handler
	algs     []string // server preference order
	pools    []*pool  // like algs
	minBytes int64
	exact    []string // media types, lower case
	prefixes []string // "text/" of "text/*"
	budget   *budget  // of encoders in use, shared by every Handler
}

// New returns next wrapped to compress by cfg (defaults applied). A nil
// cfg returns next itself.
func New(cfg *schemas.Compress, next http.Handler) (http.Handler, error) {
	if cfg == nil {
		return next, nil
	}
	if len(cfg.Algorithms) > maxAlgs {
		return nil, fmt.Errorf("compress: %d algorithms, at most %d", len(cfg.Algorithms), maxAlgs)
	}
	h := &Handler{next: next, algs: cfg.Algorithms, minBytes: cfg.MinBytes, budget: shared}
	for _, a := range cfg.Algorithms {
		p, err := poolFor(a, cfg.Level)
		if err != nil {
			return nil, err
		}
		h.pools = append(h.pools, p)
	}
	for _, t := range cfg.ContentTypes {
		t = strings.ToLower(t)
		if p, ok := strings.CutSuffix(t, "/*"); ok {
			h.prefixes = append(h.prefixes, p+"/")
		} else {
			h.exact = append(h.exact, t)
		}
	}
	return h, nil
}

// ServeHTTP serves r with the wrapped handler through a compressing
// writer. Upgrades and gRPC calls pass untouched: an upgraded connection
// is a tunnel, and gRPC has its own per-message compression.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.Header["Upgrade"]) > 0 || reply.IsGRPC(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	cw := &writer{ResponseWriter: w, h: h, alg: -1}
	// A request's no-transform asks intermediaries to leave the content
	// as it is (RFC 9111 section 5.2.1.6).
	if r.Method != http.MethodHead && len(r.Header["Range"]) == 0 && !hasToken(r.Header["Cache-Control"], "no-transform") {
		cw.alg = negotiate(r.Header["Accept-Encoding"], h.algs)
	}
	defer cw.close() // deferred: a panic (http.ErrAbortHandler) returns the encoder too
	h.next.ServeHTTP(cw, r)
}

// writer compresses a response when its headers allow it. Unwrap lets
// http.ResponseController reach the connection (Hijack, deadlines) and
// lets the Route find the request's observation.
type writer struct {
	http.ResponseWriter
	h           *Handler
	alg         int // index in h.algs; -1: the client accepts none
	wroteHeader bool
	enc         encoder // nil: passing through
	pool        *pool
}

// Unwrap returns the writer below.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader decides, on the final status, whether to compress.
func (w *writer) WriteHeader(code int) {
	if code < 200 || w.wroteHeader {
		w.ResponseWriter.WriteHeader(code) // 1xx: informational, or a repeat that net/http reports
		return
	}
	w.wroteHeader = true
	w.decide(code)
	w.ResponseWriter.WriteHeader(code)
}

// Write writes b, compressed when decided so.
func (w *writer) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		return w.enc.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// FlushError sends what the encoder holds as a complete block, then
// flushes the connection: what the handler flushed reaches the client.
func (w *writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		if err := w.enc.Flush(); err != nil {
			return fmt.Errorf("flushing the %s encoder: %w", w.pool.name, err)
		}
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for callers that use http.Flusher.
func (w *writer) Flush() { _ = w.FlushError() }

// close ends the compressed stream and returns the encoder to its pool.
func (w *writer) close() {
	if w.enc == nil {
		return
	}
	e := w.enc
	w.enc = nil
	_ = e.Close() // the client may have left: nothing to tell it
	w.pool.put(e)
	w.h.budget.give(w.pool.cost)
}

// decide looks at the response's headers once the status is known, adds
// Vary when the response could be compressed, and starts the encoder when
// this one is.
func (w *writer) decide(code int) {
	if code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent {
		return
	}
	hdr := w.ResponseWriter.Header()
	if ce := hdr["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(ce[0], "identity")) {
		return // already encoded
	}
	if hasToken(hdr["Cache-Control"], "no-transform") || !w.h.typeListed(hdr["Content-Type"]) {
		return
	}
	if cl := hdr["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n < w.h.minBytes {
			return // too small to ever be compressed: nothing varies
		}
	}
	// Whether this client gets it compressed depends on its
	// Accept-Encoding: a cache must know.
	if !hasToken(hdr["Vary"], "Accept-Encoding") && !hasToken(hdr["Vary"], "*") {
		hdr["Vary"] = append(hdr["Vary"][:len(hdr["Vary"]):len(hdr["Vary"])], "Accept-Encoding")
	}
	if w.alg < 0 || !w.h.budget.take(w.h.pools[w.alg].cost) {
		return // not accepted, or the encoders in use hold the budget: identity
	}
	w.pool = w.h.pools[w.alg]
	hdr["Content-Encoding"] = []string{w.h.algs[w.alg]}
	delete(hdr, "Content-Length")
	delete(hdr, "Accept-Ranges") // ranges of the identity body do not apply
	for _, k := range identityDigests {
		delete(hdr, k) // computed over the identity body: they would not match
	}
	if et := hdr["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
		hdr["Etag"] = []string{"W/" + et[0]} // no longer byte-for-byte the upstream's
	}
	w.enc = w.pool.get(w.ResponseWriter)
}

// identityDigests are the headers that carry a digest of the body as the
// upstream sent it (RFC 9530 Content-Digest and Repr-Digest, whose
// representation includes its content coding; RFC 3230 Digest;
// Content-MD5): a compressed body would fail a client's check.
var identityDigests = []string{"Content-Digest", "Repr-Digest", "Digest", "Content-Md5"}

// typeListed reports whether the Content-Type ct is one to compress. An
// event stream never is (see the package doc); a response without a type
// is not either.
func (h *Handler) typeListed(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	t, _, _ := strings.Cut(ct[0], ";")
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "text/event-stream" {
		return false
	}
	for _, e := range h.exact {
		if t == e {
			return true
		}
	}
	for _, p := range h.prefixes {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated header values vs list tok,
// case-insensitively (directives with arguments compare by name).
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for part := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(part, "=")
			if strings.EqualFold(strings.TrimSpace(name), tok) {
				return true
			}
		}
	}
	return false
}
