package compress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestDigestsOfIdentityBodyDropped: the digests an upstream computed over
// the identity body (RFC 9530 Content-Digest and Repr-Digest, RFC 3230
// Digest, Content-MD5) no longer match once the gateway compresses it; a
// client that checks them would reject the response. They go with the
// compression, and stay when the body passes as it is.
func TestDigestsOfIdentityBodyDropped(t *testing.T) {
	t.Parallel()
	digests := map[string]string{
		"Content-Digest": "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
		"Repr-Digest":    "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
		"Digest":         "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
		"Content-Md5":    "Q2hlY2sgSW50ZWdyaXR5IQ==",
	}
	h := wrap(t, schemas.Compress{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for k, v := range digests {
			w.Header().Set(k, v)
		}
		_, _ = io.WriteString(w, text)
	}))
	for _, tc := range []struct {
		name, accept string
		kept         bool
	}{
		{"compressed", "gzip", false},
		{"identity", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			for k := range digests {
				if got := rec.Header().Get(k) != ""; got != tc.kept {
					t.Errorf("%s kept %v, want %v (Content-Encoding %q)", k, got, tc.kept, rec.Header().Get("Content-Encoding"))
				}
			}
		})
	}
}

// TestRequestNoTransform: a request's Cache-Control: no-transform asks
// intermediaries not to transform the content (RFC 9111 section 5.2.1.6):
// the answer is not compressed, though the client accepts gzip.
func TestRequestNoTransform(t *testing.T) {
	t.Parallel()
	h := wrap(t, schemas.Compress{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, text)
	}))
	for _, cc := range []string{"no-transform", "max-age=0, No-Transform"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Cache-Control", cc)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ce := rec.Header().Get("Content-Encoding"); ce != "" || rec.Body.String() != text {
			t.Errorf("Cache-Control %q: Content-Encoding %q", cc, ce)
		}
	}
}
