package runtime

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/gitgate/gitgate/schemas"
)

// TestCacheUnderCompression: a route that compresses and caches stores
// the upstream's identity body once and encodes it for each client as it
// accepts: a compressed answer is never served to a client that did not
// accept its coding, and one entry serves every coding.
func TestCacheUnderCompression(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("the quick brown fox jumps over the lazy dog ", 100)
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(up.Close)
	r := route("/", to("u", 100))
	r.Cache = &schemas.RouteCache{}
	r.Compress = &schemas.Compress{}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)}, Routes: map[string]schemas.Route{"r": r}})
	fe := front(t, e)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	for i, tc := range []struct{ accept, want string }{
		{"gzip", "gzip"}, {"", ""}, {"zstd", "zstd"}, {"identity", ""}, {"gzip;q=0.5, zstd;q=0.1", "gzip"}, {"", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, fe.URL+"/page", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ce := resp.Header.Get("Content-Encoding")
		if ce != tc.want {
			t.Fatalf("request %d (Accept-Encoding %q): Content-Encoding %q, want %q (%s)", i, tc.accept, ce, tc.want, resp.Header.Get("Cache-Status"))
		}
		var rd io.Reader = bytes.NewReader(body)
		switch ce {
		case "gzip":
			zr, err := gzip.NewReader(rd)
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		case "zstd":
			zr, err := zstd.NewReader(rd)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			rd = zr
		}
		if got, err := io.ReadAll(rd); err != nil || string(got) != text {
			t.Fatalf("request %d: decoded %d bytes (%v), want the text", i, len(got), err)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("request %d: Vary %q", i, resp.Header.Get("Vary"))
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1 (one identity entry for every coding)", got)
	}
}
