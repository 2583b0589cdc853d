package headers

import "net/http"

// MaxPooledFields is the most field names a pooled header map may have
// held and still be kept for the next request. A Go map keeps the
// capacity it grew to, and ranging over it or clearing it costs in
// proportion to that capacity, not to what it holds: one request (or
// upstream answer) with thousands of header fields, well within the
// header size limit, would otherwise make every later request served from
// that pooled map pay for thousands of empty slots. Ordinary requests
// carry 5 to 20 fields.
const MaxPooledFields = 32

// Recycle readies h, a pooled header map, for its next request: cleared,
// or replaced by a new map when it held more than MaxPooledFields names at
// the end of the request or, by peak, at any time the caller counted
// (names removed along the way leave the capacity behind).
func Recycle(h http.Header, peak int) http.Header {
	if h == nil || max(peak, len(h)) > MaxPooledFields {
		return make(http.Header, 8)
	}
	clear(h)
	return h
}
