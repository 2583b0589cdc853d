package peers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

var testSecret = []byte("fleet-secret")

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// receiverServer serves a Receiver on a real listener and counts triggers.
func receiverServer(t *testing.T, opts ReceiverOptions) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var triggers atomic.Int32
	opts.Secret = testSecret
	opts.Trigger = func(string) { triggers.Add(1) }
	opts.Logger = zerolog.Nop()
	r, err := NewReceiver(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+NudgePath, r)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &triggers
}

// signedReq returns a nudge to srv signed with secret at time at.
func signedReq(t *testing.T, url string, secret []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+NudgePath, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(req, secret, "webhook", at); err != nil {
		t.Fatal(err)
	}
	return req
}

func send(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReceiverRefusesForgedStaleAndReplayedNudges sends each kind of bad
// nudge to a real listener: only a fresh, correctly signed, never-seen one
// triggers a sync.
func TestReceiverRefusesForgedStaleAndReplayedNudges(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		build   func(t *testing.T, url string) *http.Request
		want    int
		trigger bool
	}{
		{name: "fresh and signed", want: http.StatusAccepted, trigger: true,
			build: func(t *testing.T, url string) *http.Request { return signedReq(t, url, testSecret, base) }},
		{name: "at the edge of the window", want: http.StatusAccepted, trigger: true,
			build: func(t *testing.T, url string) *http.Request {
				return signedReq(t, url, testSecret, base.Add(-30*time.Second))
			}},
		{name: "expired timestamp", want: http.StatusUnauthorized,
			build: func(t *testing.T, url string) *http.Request {
				return signedReq(t, url, testSecret, base.Add(-31*time.Second))
			}},
		{name: "timestamp in the future", want: http.StatusUnauthorized,
			build: func(t *testing.T, url string) *http.Request {
				return signedReq(t, url, testSecret, base.Add(time.Minute))
			}},
		{name: "wrong secret", want: http.StatusUnauthorized,
			build: func(t *testing.T, url string) *http.Request { return signedReq(t, url, []byte("other"), base) }},
		{name: "timestamp moved after signing", want: http.StatusUnauthorized,
			build: func(t *testing.T, url string) *http.Request {
				r := signedReq(t, url, testSecret, base.Add(-10*time.Second))
				r.Header.Set(HeaderTimestamp, "1796529600")
				return r
			}},
		{name: "reason changed after signing", want: http.StatusUnauthorized,
			build: func(t *testing.T, url string) *http.Request {
				r := signedReq(t, url, testSecret, base)
				r.Header.Set(HeaderReason, "rollback")
				return r
			}},
		{name: "unsigned", want: http.StatusBadRequest,
			build: func(t *testing.T, url string) *http.Request {
				r := signedReq(t, url, testSecret, base)
				r.Header.Del(HeaderSignature)
				return r
			}},
		{name: "short nonce", want: http.StatusBadRequest,
			build: func(t *testing.T, url string) *http.Request {
				r := signedReq(t, url, testSecret, base)
				r.Header.Set(HeaderNonce, "abc")
				return r
			}},
		{name: "a body", want: http.StatusRequestEntityTooLarge,
			build: func(t *testing.T, url string) *http.Request {
				r := signedReq(t, url, testSecret, base)
				r.Body, r.ContentLength = http.NoBody, 5
				r.Body = nopCloser{strings.NewReader("hello")}
				return r
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: base}
			srv, triggers := receiverServer(t, ReceiverOptions{Now: clk.Now})
			if got := send(t, tt.build(t, srv.URL)); got != tt.want {
				t.Fatalf("answer %d, want %d", got, tt.want)
			}
			if got := triggers.Load() == 1; got != tt.trigger {
				t.Fatalf("triggered %d times, want trigger %v", triggers.Load(), tt.trigger)
			}
		})
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// TestReceiverRefusesReplay sends one signed nudge twice: the second is
// refused and triggers nothing, even after other nudges went through.
func TestReceiverRefusesReplay(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	clk := &clock{now: base}
	srv, triggers := receiverServer(t, ReceiverOptions{Now: clk.Now})
	first := signedReq(t, srv.URL, testSecret, base)
	replay := first.Clone(first.Context())
	if got := send(t, first); got != http.StatusAccepted {
		t.Fatalf("first: %d", got)
	}
	if got := send(t, signedReq(t, srv.URL, testSecret, base)); got != http.StatusAccepted {
		t.Fatalf("another nudge: %d", got)
	}
	clk.Add(20 * time.Second) // still inside the window
	if got := send(t, replay); got != http.StatusConflict {
		t.Fatalf("replay answered %d, want %d", got, http.StatusConflict)
	}
	if n := triggers.Load(); n != 2 {
		t.Fatalf("%d triggers, want 2", n)
	}
}

// TestReceiverNonceCacheIsBounded fills a cache of two nonces: a third
// live nudge is refused (never remembered past the bound), and once the
// first two leave the window there is room again.
func TestReceiverNonceCacheIsBounded(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	clk := &clock{now: base}
	srv, triggers := receiverServer(t, ReceiverOptions{Now: clk.Now, NonceCache: 2})
	for i, want := range []int{http.StatusAccepted, http.StatusAccepted, http.StatusServiceUnavailable} {
		if got := send(t, signedReq(t, srv.URL, testSecret, clk.Now())); got != want {
			t.Fatalf("nudge %d: %d, want %d", i, got, want)
		}
	}
	clk.Add(31 * time.Second)
	if got := send(t, signedReq(t, srv.URL, testSecret, clk.Now())); got != http.StatusAccepted {
		t.Fatalf("after the window: %d, want 202", got)
	}
	if n := triggers.Load(); n != 3 {
		t.Fatalf("%d triggers, want 3", n)
	}
}
