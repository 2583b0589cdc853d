package compress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestEncoderBudget: encoders in use are bounded in memory (a zstd one
// holds megabytes for as long as its response lasts, so a few thousand
// slow readers of a compressible stream would hold gigabytes); beyond the
// budget a response goes out uncompressed, still with Vary, and the
// budget comes back when a compressed response ends.
func TestEncoderBudget(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"gzip", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			hold, held := make(chan struct{}), make(chan struct{}, 1)
			h := wrap(t, schemas.Compress{Algorithms: []string{alg}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, text)
				if r.URL.Path == "/hold" {
					held <- struct{}{}
					<-hold
				}
			})).(*Handler)
			h.budget = newBudget(h.pools[0].cost) // room for one encoder
			get := func(path string) *httptest.ResponseRecorder {
				r := httptest.NewRequest("GET", path, nil)
				r.Header.Set("Accept-Encoding", alg)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			done := make(chan *httptest.ResponseRecorder)
			go func() { done <- get("/hold") }()
			<-held
			over := get("/other")
			if ce := over.Header().Get("Content-Encoding"); ce != "" {
				t.Errorf("over budget: Content-Encoding %q, want none", ce)
			}
			if over.Body.String() != text || over.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("over budget: body of %d bytes, Vary %q", over.Body.Len(), over.Header().Get("Vary"))
			}
			close(hold)
			first := <-done
			if ce := first.Header().Get("Content-Encoding"); ce != alg {
				t.Errorf("within budget: Content-Encoding %q, want %s", ce, alg)
			}
			if got := get("/after"); got.Header().Get("Content-Encoding") != alg || string(decode(t, alg, got.Body.Bytes())) != text {
				t.Errorf("after the first ended: Content-Encoding %q", got.Header().Get("Content-Encoding"))
			}
		})
	}
}
