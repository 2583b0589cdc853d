package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/schemas"
)

// streamingUpstream answers /fail with 502, /ok with its name, and /big
// (and /retry-big after the first 502 of all upstreams sharing retryHits)
// with a body that never ends.
func streamingUpstream(t *testing.T, name string, retryHits *atomic.Int64) *httptest.Server {
	t.Helper()
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusBadGateway)
			return
		case "/retry-big":
			if retryHits.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		case "/big":
		default:
			_, _ = io.WriteString(w, name)
			return
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// abortDownload sends GET path on a raw connection, reads the response
// head and closes the connection with the body unread.
func abortDownload(t *testing.T, addr, path string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading status line: %v", err)
	}
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("status line %q, want 200", status)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading response head: %v", err)
		}
		if line == "\r\n" {
			return
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientAbortKeepsAccounting: a client that reads the response head
// of a download and closes makes ReverseProxy panic with
// http.ErrAbortHandler. The attempt must still be handed back to the pool
// (in-flight counts back to 0), to the breaker (a half-open probe that the
// client aborted frees its slot: the client leaving is no failure of the
// upstream, so the next request probes again and closes the breaker) and
// to the retry budget; least_requests then spreads requests over both
// targets again.
func TestClientAbortKeepsAccounting(t *testing.T) {
	t.Parallel()
	var retryHits atomic.Int64
	a, b := streamingUpstream(t, "a", &retryHits), streamingUpstream(t, "b", &retryHits)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	opts := &Options{Now: clock.Now}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"u": {
			Targets: []string{a.URL, b.URL},
			Balance: schemas.BalanceLeastRequests,
			CircuitBreaker: &schemas.CircuitBreaker{ConsecutiveFailures: 2, OpenDuration: schemas.Duration(time.Second),
				HalfOpenRequests: 1},
		}},
		Routes: map[string]schemas.Route{"r": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "u", Weight: 100}},
			Retries: &schemas.Retries{Attempts: 1, On: []string{schemas.Retry502}, BudgetPercent: 100, MinRetriesPerSecond: 10,
				BackoffBase: schemas.Duration(time.Microsecond), BackoffMax: schemas.Duration(time.Microsecond)},
		}},
	}
	cfg.ApplyDefaults()
	pool, err := upstream.NewPool("u", cfg.Upstreams["u"], upstream.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rt, err := NewRoute("r", cfg.Routes["r"], map[string]*Forwarder{"u": NewForwarder(pool, opts)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(rt)
	t.Cleanup(gw.Close)
	addr := gw.Listener.Addr().String()
	inFlight := func() int64 {
		var n int64
		for _, tg := range pool.Targets() {
			n += tg.InFlight()
		}
		return n
	}
	getOK := func(path string) string {
		t.Helper()
		resp, err := gw.Client().Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return resp.Header.Get("X-Upstream")
	}

	// Aborted downloads in the closed state, one of them on a retry (its
	// first attempt's 502 counts as one failure for the breaker).
	abortDownload(t, addr, "/big")
	abortDownload(t, addr, "/retry-big")
	waitFor(t, "in-flight back to 0 after aborted downloads", func() bool { return inFlight() == 0 })
	waitFor(t, "retry budget released", func() bool { return rt.budget.inFlight.Load() == 0 })

	// Open the breaker, let it go half-open, and abort its probe.
	for range 2 {
		resp, err := gw.Client().Get(gw.URL + "/fail")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if got := pool.Breaker().State(); got != upstream.BreakerOpen {
		t.Fatalf("breaker %v after two failures, want open", got)
	}
	clock.Advance(time.Second)
	abortDownload(t, addr, "/big")
	waitFor(t, "in-flight back to 0 after an aborted probe", func() bool { return inFlight() == 0 })
	getOK("/ok") // the next probe goes through and closes the breaker
	if got := pool.Breaker().State(); got != upstream.BreakerClosed {
		t.Fatalf("breaker %v after a successful probe, want closed", got)
	}

	seen := map[string]int{}
	for range 40 {
		seen[getOK("/ok")]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("least_requests sent %v: one target is shunned", seen)
	}
}
