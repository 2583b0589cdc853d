package runtime

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n"))
}

// TestAccessLog: with the access log on, each proxied request is one JSON
// line naming the route, the upstream, the status, the bytes sent, the
// duration and the config version that served it.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	var sink lockedBuffer
	a := named(t, "a")
	e := newEngine(t, Options{AccessLog: true, Logger: zerolog.New(&sink)})
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)}, Routes: map[string]schemas.Route{"shop": route("/shop", to("a", 100))}}
	b := bundleOf(t, cfg)
	if err := e.Apply(b); err != nil {
		t.Fatal(err)
	}
	srv := front(t, e)
	if code, body, _ := get(t, srv.Client(), srv.URL+"/shop/cart", nil); code != http.StatusOK || body != "a" {
		t.Fatalf("got %d %q", code, body)
	}
	var found map[string]any
	for _, l := range sink.lines() {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["message"] == "request" {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no access log line in:\n%s", bytes.Join(sink.lines(), []byte("\n")))
	}
	want := map[string]any{"route": "shop", "upstream": "a", "method": "GET", "path": "/shop/cart", "status": float64(200), "bytes": float64(1), "version": b.Version}
	for k, v := range want {
		if found[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, found[k], v, found)
		}
	}
	if _, ok := found["duration"]; !ok {
		t.Errorf("no duration in %v", found)
	}
}
