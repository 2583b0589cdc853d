package runtime

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/proxy"
	"github.com/gitgate/gitgate/schemas"
)

// TestLocalAnswersThroughTheEngine serves a maintenance page, a redirect
// and a compressed route through the whole engine: the route's policy
// still decides first, each request is one access log line and one
// traffic count under the route, and a compressed response is counted
// once although a writer stands between the observation and the route.
func TestLocalAnswersThroughTheEngine(t *testing.T) {
	t.Parallel()
	var sink lockedBuffer
	up := named(t, strings.Repeat("x", 4096))
	e := newEngine(t, Options{AccessLog: true, Logger: zerolog.New(&sink)})
	sum := sha256.Sum256([]byte("secret-key"))
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)},
		Routes: map[string]schemas.Route{
			"maint": {
				Match:          schemas.Match{Path: "/admin"},
				DirectResponse: &schemas.DirectResponse{Status: 503, Body: "back soon\n", Headers: map[string]string{"Retry-After": "60"}},
				Policies:       []string{"key"},
			},
			"old": {
				Match:           schemas.Match{Path: "/old"},
				Redirect:        &schemas.Redirect{Prefix: "/new", Status: 301},
				ResponseHeaders: &schemas.HeaderOps{Set: map[string]string{"Cache-Control": "max-age=60"}},
			},
			"users": {
				Match:    schemas.Match{Path: "/users/{id}", PathType: schemas.PathTemplate},
				Redirect: &schemas.Redirect{Path: "/u/{id}", StripQuery: true},
			},
			"api": func() schemas.Route {
				r := route("/api", to("u", 100))
				r.Compress = &schemas.Compress{Algorithms: []string{"gzip"}}
				r.ResponseHeaders = &schemas.HeaderOps{Set: map[string]string{"Content-Type": "text/plain"}}
				r.Policies = []string{"key"}
				return r
			}(),
		},
		Policies: map[string]schemas.Policy{"key": {APIKey: &schemas.APIKey{Keys: map[string]string{"ci": "sha256:" + hex.EncodeToString(sum[:])}}}},
	}
	mustApply(t, e, cfg)
	srv := front(t, e)
	noRedirect := *srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	do := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	key := map[string]string{"X-API-Key": "secret-key"}

	if resp, _ := do("/admin", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("maintenance page without a key: %d, want the policy's 401", resp.StatusCode)
	}
	if resp, body := do("/admin/x", key); resp.StatusCode != 503 || body != "back soon\n" || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("maintenance page: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := do("/old/a?b=1", nil); resp.StatusCode != 301 || resp.Header.Get("Location") != "http://"+srv.Listener.Addr().String()+"/new/a?b=1" || resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do("/users/42?tab=x", nil); resp.StatusCode != 302 || resp.Header.Get("Location") != "http://"+srv.Listener.Addr().String()+"/u/42" {
		t.Fatalf("template redirect: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := do("/api", map[string]string{"Accept-Encoding": "gzip"}); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("compressed route without a key: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := do("/api", map[string]string{"Accept-Encoding": "gzip", "X-API-Key": "secret-key"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || body != strings.Repeat("x", 4096) {
		t.Fatalf("compressed route: %d %v %d bytes", resp.StatusCode, resp.Header, len(body))
	}

	// One access log line per request, with the route and the upstream
	// label of who answered.
	type line struct{ route, upstream, policy string }
	var got []line
	for _, l := range sink.lines() {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["message"] == "request" {
			got = append(got, line{m["route"].(string), m["upstream"].(string), m["policy"].(string)})
		}
	}
	want := []line{
		{"maint", proxy.None, "key"}, {"maint", proxy.UpstreamDirect, proxy.None},
		{"old", proxy.UpstreamRedirect, proxy.None},
		{"users", proxy.UpstreamRedirect, proxy.None},
		{"api", proxy.None, "key"}, {"api", "u", proxy.None},
	}
	if len(got) != len(want) {
		t.Fatalf("access log lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("access log line %d: %v, want %v", i, got[i], want[i])
		}
	}
	tr := e.Status().Traffic.Current.Routes
	for name, n := range map[string]uint64{"maint": 1, "old": 1, "users": 1, "api": 1} {
		if c := tr[name].Requests; c != n {
			t.Errorf("route %s counted %d requests past its policies, want %d", name, c, n)
		}
	}
}

// TestCompressedStreamThroughTheEngine: an upstream flushes one line and
// waits until the client has decoded it before sending the next; through
// the engine's route (ReverseProxy flushing a body without Content-Length)
// and its compressor, each line must arrive on its own.
func TestCompressedStreamThroughTheEngine(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range 3 {
			_, _ = io.WriteString(w, `{"n":`+strconv.Itoa(i)+"}\n")
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	e := newEngine(t, Options{})
	r := route("/", to("u", 100))
	r.Compress = &schemas.Compress{Algorithms: []string{"gzip"}, ContentTypes: []string{"application/x-ndjson"}}
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"u": ups(up.URL)}, Routes: map[string]schemas.Route{"r": r}})
	srv := front(t, e)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		want := `{"n":` + strconv.Itoa(i) + "}\n"
		got := make([]byte, len(want))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(zr, got); done <- err }()
		select {
		case err := <-done:
			if err != nil || string(got) != want {
				t.Fatalf("line %d: %q, %v", i, got, err)
			}
		case <-time.After(30 * time.Second): // a hang, not a timing measurement
			t.Fatalf("line %d never arrived: held by the proxy or the compressor", i)
		}
		next <- struct{}{}
	}
}
