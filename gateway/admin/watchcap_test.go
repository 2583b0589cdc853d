package admin

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestWatcherCapFollowsTheFDLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured int
		softLimit  uint64
		want       int
	}{
		{name: "default limit of 1024 leaves three quarters to the data plane", configured: 1024, softLimit: 1024, want: 256},
		{name: "a low limit lowers the cap", configured: 1024, softLimit: 64, want: 16},
		{name: "a tiny limit still allows one watcher", configured: 1024, softLimit: 3, want: 1},
		{name: "a high limit never raises the configured cap", configured: 1024, softLimit: 1 << 20, want: 1024},
		{name: "a small configured cap is kept", configured: 10, softLimit: 1024, want: 10},
		{name: "unknown limit keeps the configured cap", configured: 1024, softLimit: 0, want: 1024},
		{name: "unlimited keeps the configured cap", configured: 1024, softLimit: ^uint64(0), want: 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := watcherCap(tt.configured, tt.softLimit); got != tt.want {
				t.Fatalf("watcherCap(%d, %d) = %d, want %d", tt.configured, tt.softLimit, got, tt.want)
			}
		})
	}
}

// TestWatcherRefusalClosesTheConnection fills the watcher slots and sends
// one more watch request on a raw connection: the 503 says Connection:
// close and the server closes the connection, so a refused client holds
// no file descriptor.
func TestWatcherRefusalClosesTheConnection(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.MaxWatchers = 1 })
	sub := subscribe(t, h.client, 0)
	sub.next(t)

	c, err := net.Dial("unix", h.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/watch?since=x HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second watcher: %d, want 503", resp.StatusCode)
	}
	if !resp.Close { // http.ReadResponse turns Connection: close into Close
		t.Fatalf("503 without Connection: close (headers %v)", resp.Header)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after the 503: read %v, %v", n, err)
	}
}

func TestNewCapsWatchersByTheFDLimit(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Runtime: &fakeRuntime{}, Watch: true, MaxWatchers: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	limit := fdSoftLimit()
	if limit == 0 || limit == ^uint64(0) {
		t.Skipf("no finite RLIMIT_NOFILE here (%d)", limit)
	}
	if got := uint64(s.opts.MaxWatchers); got > limit/watcherShareOfFDs {
		t.Fatalf("MaxWatchers %d with a soft fd limit of %d, want at most %d", got, limit, limit/watcherShareOfFDs)
	}
}
