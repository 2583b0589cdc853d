package serve

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestRequestTrailersReachTheUpstream sends chunked requests with trailer
// fields on a raw connection and checks what the upstream's handler got,
// over the HTTP/1.1 server the package's run was given: announced
// trailers are forwarded after the body, as net/http's server and
// ReverseProxy forward them; unannounced ones end the body and go no
// further, on either server; a forbidden announcement is refused.
func TestRequestTrailersReachTheUpstream(t *testing.T) {
	t.Parallel()
	type seen struct {
		body    string
		trailer http.Header
		header  http.Header
	}
	got := make(chan seen, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{string(b), r.Trailer.Clone(), r.Header.Clone()}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	addr := serveConfig(t, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes:    map[string]schemas.Route{"all": {Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}}},
	})
	tests := []struct {
		name    string
		raw     string
		status  int
		trailer http.Header // what the upstream's Request.Trailer held
	}{
		{
			name:    "announced",
			raw:     "POST /t HTTP/1.1\r\nHost: x\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-checksum: c1\r\n\r\n",
			status:  http.StatusOK,
			trailer: http.Header{"X-Checksum": {"c1"}},
		},
		{
			name:    "announced twice, sent with two values",
			raw:     "POST /t HTTP/1.1\r\nHost: x\r\nTrailer: X-A, X-B\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\nX-A: 2\r\nX-B: 3\r\n\r\n",
			status:  http.StatusOK,
			trailer: http.Header{"X-A": {"1", "2"}, "X-B": {"3"}},
		},
		{
			name:   "not announced",
			raw:    "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: c1\r\n\r\n",
			status: http.StatusOK,
		},
		{
			name:   "announcing Content-Length",
			raw:    "POST /t HTTP/1.1\r\nHost: x\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 9\r\n\r\n",
			status: http.StatusBadRequest,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: one upstream channel.
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				select {
				case s := <-got:
					t.Fatalf("the upstream got a refused request: %+v", s)
				default:
				}
				return
			}
			s := <-got
			if s.body != "abc" {
				t.Errorf("upstream body %q, want abc", s.body)
			}
			if len(s.trailer) != len(tc.trailer) {
				t.Errorf("upstream trailer %q, want %q", s.trailer, tc.trailer)
			}
			for k, want := range tc.trailer {
				if g := s.trailer[k]; len(g) != len(want) || (len(g) > 0 && g[0] != want[0]) || (len(g) > 1 && g[1] != want[1]) {
					t.Errorf("upstream trailer %s = %q, want %q", k, g, want)
				}
			}
			if v := s.header.Get("X-Checksum"); v != "" {
				t.Errorf("a trailer reached the upstream as a header: %q", v)
			}
		})
	}
}
