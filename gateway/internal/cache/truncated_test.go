package cache

import (
	"io"
	"net/http"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestTruncatedBodyNotStored: an upstream that breaks off mid-body after
// declaring its Content-Length must not leave the part it sent stored as
// the whole answer. net/http's server makes ReverseProxy panic on the
// failed copy, but a handler run without it (the fasthttp data plane, or
// this test) returns normally with the body cut short.
func TestTruncatedBodyNotStored(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 0)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(buf, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nonly part of it")
		_ = buf.Flush()
	})
	h := one(t, s, b, schemas.RouteCache{})
	do(h, "GET", "/p")
	if n := s.Stats().Entries; n != 0 {
		t.Errorf("%d entries: the truncated body was stored", n)
	}
	if w := do(h, "GET", "/p"); w.Header().Get(StatusHeader) != "gitgate; fwd=uri-miss" {
		t.Errorf("second request: %q %q, want a miss", w.Header().Get(StatusHeader), w.Body)
	}
}
