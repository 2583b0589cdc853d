package serve

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientGoneCancelsTheUpstreamRequest: a client that closes its
// connection while the upstream is still working has the gateway give up
// the upstream request too (the upstream sees its connection end), on a
// first request and on one after others on the same connection.
func TestClientGoneCancelsTheUpstreamRequest(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		entered <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(up.Close)
	addr := serveConfig(t, allTo(up.URL))
	for _, quick := range []int{0, 3} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		for range quick {
			_, _ = io.WriteString(conn, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
			buf := make([]byte, 4096)
			if _, err := conn.Read(buf); err != nil {
				t.Fatalf("quick request: %v", err)
			}
		}
		_, _ = io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-entered
		_ = conn.Close()
		select {
		case <-canceled:
		case <-time.After(5 * time.Second):
			t.Fatalf("after %d quick requests: the upstream request outlived its client by 5s", quick)
		}
	}
}
