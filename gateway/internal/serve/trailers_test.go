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

// TestRequestTrailersStopAtTheGateway sends chunked requests with trailer
// fields on a raw connection and checks what the upstream's handler got,
// over the HTTP/1.1 server the package's run was given: the body, and
// neither the trailer fields nor their announcement, announced or not
// (an upstream that merged them into its header would let a client set
// what the gateway removes from it); a forbidden announcement is refused.
func TestRequestTrailersStopAtTheGateway(t *testing.T) {
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
		name   string
		raw    string
		status int
		// fastStatus replaces status over fasthttp, which refuses more
		// trailer names than net/http.
		fastStatus int
	}{
		{
			name:   "announced",
			raw:    "POST /t HTTP/1.1\r\nHost: x\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-checksum: c1\r\n\r\n",
			status: http.StatusOK,
		},
		{
			name:       "a forwarding header, announced",
			raw:        "POST /t HTTP/1.1\r\nHost: x\r\nTrailer: X-Checksum, X-Real-Ip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: c1\r\nX-Real-Ip: 10.0.0.1\r\n\r\n",
			status:     http.StatusOK,
			fastStatus: http.StatusBadRequest,
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
			status := tc.status
			if testHTTP1() == HTTP1Fast && tc.fastStatus != 0 {
				status = tc.fastStatus
			}
			if resp.StatusCode != status {
				t.Fatalf("status %d, want %d", resp.StatusCode, status)
			}
			if status != http.StatusOK {
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
			if len(s.trailer) != 0 {
				t.Errorf("upstream trailer %q, want none", s.trailer)
			}
			for _, k := range []string{"Trailer", "X-Checksum", "X-Real-Ip"} {
				if v, ok := s.header[k]; ok {
					t.Errorf("upstream header %s: %q, want none", k, v)
				}
			}
		})
	}
}
