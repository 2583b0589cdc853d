package compress

import (
	"errors"
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

// failingWriter is a client that left: every write fails.
type failingWriter struct{ h http.Header }

func (w *failingWriter) Header() http.Header       { return w.h }
func (w *failingWriter) Write([]byte) (int, error) { return 0, errClientGone }
func (w *failingWriter) WriteHeader(int)           {}

var errClientGone = errors.New("client gone")

// TestEncoderAfterClientLeft: an encoder whose client left mid-stream
// (its writes failed, its Close failed) goes back to the pool and then
// compresses the next response correctly, and its budget comes back.
func TestEncoderAfterClientLeft(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"gzip", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			h := wrap(t, schemas.Compress{Algorithms: []string{alg}, Level: schemas.CompressFastest}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				for range 50 {
					if _, err := io.WriteString(w, text); err != nil {
						return
					}
					http.NewResponseController(w).Flush()
				}
			})).(*Handler)
			h.budget = newBudget(h.pools[0].cost)
			for i := range 20 {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Accept-Encoding", alg)
				if i%2 == 0 {
					h.ServeHTTP(&failingWriter{h: http.Header{}}, r)
					continue
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if ce := w.Header().Get("Content-Encoding"); ce != alg {
					t.Fatalf("response %d: Content-Encoding %q (budget not given back?)", i, ce)
				}
				if got := decode(t, alg, w.Body.Bytes()); len(got) != 50*len(text) {
					t.Fatalf("response %d: decoded %d bytes, want %d", i, len(got), 50*len(text))
				}
			}
		})
	}
}
