package serve

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMalformedRequestsNeverReachTheUpstream sends ambiguous or oversized
// requests on a raw connection to the real data plane and checks the answers
// and exactly what the upstream received. A request with both Content-Length
// and chunked framing is read as RFC 9112 §6.3 tells an intermediary: the
// chunked framing wins and Content-Length is dropped, so what follows the
// last chunk is a request of its own that gitgate itself routes and re-frames
// (the upstream can never read it differently); conflicting Content-Lengths
// and headers over the size bound are refused before any routing.
func TestMalformedRequestsNeverReachTheUpstream(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" xff="+r.Header.Get("X-Forwarded-For")+" body="+string(body))
		mu.Unlock()
		_, _ = io.WriteString(w, "up")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, "", nil)
	if _, err := g.admin.Put(context.Background(), bundle(t, "v1", up.URL, "app"), ""); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(g.data, "http://")

	tests := []struct {
		name       string
		raw        string
		wantStatus []int    // the answers on the connection, in order
		wantSeen   []string // what the upstream received, in order
		// fastStatus and fastSeen, when set, replace wantStatus and
		// wantSeen over --http1-server fasthttp, which answers a request
		// with both framings and then closes the connection (RFC 9112
		// section 6.3), so nothing after it is read.
		fastStatus []int
		fastSeen   []string
	}{
		{
			name: "content-length and chunked together",
			raw: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
			wantStatus: []int{http.StatusOK, http.StatusOK},
			wantSeen:   []string{"POST /a xff=127.0.0.1 body=", "GET /smuggled xff=127.0.0.1 body="},
			fastStatus: []int{http.StatusOK},
			fastSeen:   []string{"POST /a xff=127.0.0.1 body="},
		},
		{
			name:       "two different content-lengths",
			raw:        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody",
			wantStatus: []int{http.StatusBadRequest},
		},
		{
			name:       "headers over the size bound",
			raw:        "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
			wantStatus: []int{http.StatusRequestHeaderFieldsTooLarge},
		},
		{
			name:       "connection-listed x-forwarded-for is not a way to drop the proxy's own",
			raw:        "GET /xff HTTP/1.1\r\nHost: x\r\nConnection: close, X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
			wantStatus: []int{http.StatusOK},
			wantSeen:   []string{"GET /xff xff=127.0.0.1 body="},
		},
	}
	for _, tc := range tests {
		// Not parallel: each case inspects what the shared upstream saw.
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			if testHTTP1() == HTTP1Fast && tc.fastStatus != nil {
				tc.wantStatus, tc.wantSeen = tc.fastStatus, tc.fastSeen
			}
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			// The server may answer and close before it has read everything.
			go func() { _, _ = io.WriteString(conn, tc.raw) }()
			br := bufio.NewReader(conn)
			for i, want := range tc.wantStatus {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading answer %d: %v", i+1, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("answer %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
			}
			mu.Lock()
			got := append([]string(nil), seen...)
			mu.Unlock()
			if strings.Join(got, "|") != strings.Join(tc.wantSeen, "|") {
				t.Fatalf("upstream saw %q, want %q", got, tc.wantSeen)
			}
		})
	}
}
