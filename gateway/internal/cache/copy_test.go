package cache

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestUnstorableResponseNotCopied: a response whose headers already say
// it will not be stored (private, no-store, Set-Cookie, a status never
// stored) streams through without the cache copying its body: a route
// of private 1 MiB answers otherwise held a useless copy of up to twice
// maxEntryBytes per request in flight. Not parallel: it reads the
// process's allocation counter.
func TestUnstorableResponseNotCopied(t *testing.T) {
	const size = 1 << 20
	chunk := make([]byte, 32<<10)
	tests := []struct {
		name   string
		status int
		hdr    []string
	}{
		{"private", 200, []string{"Cache-Control", "private, max-age=60"}},
		{"no-store", 200, []string{"Cache-Control", "no-store"}},
		{"no-cache", 200, []string{"Cache-Control", "no-cache"}},
		{"Set-Cookie", 200, []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}},
		{"Vary star", 200, []string{"Cache-Control", "max-age=60", "Vary", "*"}},
		{"500", 500, []string{"Cache-Control", "max-age=60"}},
		{"206", 206, []string{"Cache-Control", "max-age=60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, 0)
			next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for i := 0; i+1 < len(tt.hdr); i += 2 {
					w.Header().Add(tt.hdr[i], tt.hdr[i+1])
				}
				w.WriteHeader(tt.status)
				for range size / len(chunk) {
					_, _ = w.Write(chunk)
				}
			})
			cfg := schemas.Config{Routes: map[string]schemas.Route{"r": route(schemas.RouteCache{MaxEntryBytes: 4 << 20})}}
			cfg.ApplyDefaults()
			h, ns := s.Wrap("r", cfg.Routes["r"], next)
			s.Retain([]string{ns})
			r := httptest.NewRequest("GET", "/p", nil)
			h.ServeHTTP(&discard{h: http.Header{}}, r) // warm
			const runs = 8
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				h.ServeHTTP(&discard{h: http.Header{}}, r)
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > size/4 {
				t.Errorf("%d bytes allocated per %d-byte response that is not stored", per, size)
			}
			if s.Stats().Entries != 0 {
				t.Errorf("stored")
			}
		})
	}
}

// TestStoredStreamCopiedOnce: a streamed response (no Content-Length) that
// is stored is copied with its buffer doubling, not growing by append's
// 1.25 for large slices: that allocated five times the body per miss.
// Not parallel: it reads the process's allocation counter.
func TestStoredStreamCopiedOnce(t *testing.T) {
	const size = 1 << 20
	chunk := make([]byte, 32<<10)
	s, _ := newStore(t, 0)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		for range size / len(chunk) {
			_, _ = w.Write(chunk)
		}
	})
	cfg := schemas.Config{Routes: map[string]schemas.Route{"r": route(schemas.RouteCache{MaxEntryBytes: 4 << 20})}}
	cfg.ApplyDefaults()
	h, ns := s.Wrap("r", cfg.Routes["r"], next)
	s.Retain([]string{ns})
	h.ServeHTTP(&discard{h: http.Header{}}, httptest.NewRequest("GET", "/warm", nil))
	const runs = 8
	reqs := make([]*http.Request, runs)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", "/p?i="+strconv.Itoa(i), nil)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, r := range reqs {
		h.ServeHTTP(&discard{h: http.Header{}}, r)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("%d bytes allocated per stored %d-byte stream", per, size)
	if per > 5*size/2 {
		t.Errorf("%d bytes allocated to store a %d-byte streamed response", per, size)
	}
	if got := s.Stats().Entries; got != runs+1 {
		t.Errorf("%d entries, want %d", got, runs+1)
	}
}
