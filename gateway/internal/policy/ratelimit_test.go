package policy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

func rlCfg(rl schemas.RateLimit) *schemas.Config {
	return routeCfg(map[string]schemas.Policy{"rl": {RateLimit: &rl}}, "rl")
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	type step struct {
		header  http.Header
		advance time.Duration
		status  int
		remain  string // expected RateLimit-Remaining, "" to skip
		retry   string // expected Retry-After on 429, "" to skip
	}
	tests := []struct {
		name  string
		rl    schemas.RateLimit
		steps []step
	}{
		{
			name: "burst then 429 with retry-after",
			rl:   schemas.RateLimit{Rate: 1, Per: schemas.Duration(2 * time.Second), Burst: 2},
			steps: []step{
				{status: 200, remain: "1"},
				{status: 200, remain: "0"},
				{status: 429, remain: "0", retry: "2"},
			},
		},
		{
			name: "refills with time",
			rl:   schemas.RateLimit{Rate: 1, Burst: 1},
			steps: []step{
				{status: 200},
				{status: 429, retry: "1"},
				{advance: time.Second, status: 200},
			},
		},
		{
			name: "header key gives each value its own bucket",
			rl:   schemas.RateLimit{Rate: 1, Burst: 1, Key: "header:X-User"},
			steps: []step{
				{header: hdr("X-User", "alice"), status: 200},
				{header: hdr("X-User", "alice"), status: 429},
				{header: hdr("X-User", "bob"), status: 200},
				// no header: falls back to the client address, its own bucket
				{status: 200},
				{status: 429},
			},
		},
		{
			name: "route key shares one bucket among clients",
			rl:   schemas.RateLimit{Rate: 1, Burst: 1, Key: "route"},
			steps: []step{
				{header: hdr("X-User", "alice"), status: 200},
				{header: hdr("X-User", "bob"), status: 429},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			g := newGateway(t, rlCfg(tc.rl), "r", Options{Now: clock.Now})
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				res := g.do(t, "GET", "/", s.header)
				if res.status != s.status {
					t.Fatalf("step %d: status %d, want %d (%s)", i, res.status, s.status, res.body)
				}
				if got := res.header.Get("RateLimit-Limit"); got != fmt.Sprint(g.set.limiters["rl"].burst) {
					t.Errorf("step %d: RateLimit-Limit %q", i, got)
				}
				if s.remain != "" && res.header.Get("RateLimit-Remaining") != s.remain {
					t.Errorf("step %d: RateLimit-Remaining %q, want %q", i, res.header.Get("RateLimit-Remaining"), s.remain)
				}
				if res.header.Get("RateLimit-Reset") == "" {
					t.Errorf("step %d: no RateLimit-Reset", i)
				}
				if s.status == 429 {
					if s.retry != "" && res.header.Get("Retry-After") != s.retry {
						t.Errorf("step %d: Retry-After %q, want %q", i, res.header.Get("Retry-After"), s.retry)
					}
					if ct := res.header.Get("Content-Type"); ct != "application/json" || !strings.Contains(res.body, `"rate_limited"`) {
						t.Errorf("step %d: 429 body %q (%s)", i, res.body, ct)
					}
				}
			}
		})
	}
}

func TestRateLimitStateAcrossCompile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		next   schemas.RateLimit
		status int // of the first request after recompiling
	}{
		{name: "unchanged settings keep the empty bucket", next: schemas.RateLimit{Rate: 1, Burst: 1}, status: 429},
		{name: "changed rate starts fresh buckets", next: schemas.RateLimit{Rate: 2, Burst: 1}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			opts := Options{Now: clock.Now}
			up := newUpstream(t)
			get := func(set *Set) int {
				t.Helper()
				srv := httptest.NewServer(set.Wrap("r", []string{"rl"}, proxyTo(t, up)))
				defer srv.Close()
				resp, err := srv.Client().Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			cfg := rlCfg(schemas.RateLimit{Rate: 1, Burst: 1})
			cfg.ApplyDefaults()
			first, err := Compile(cfg, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(first); got != 200 {
				t.Fatalf("first request: %d", got)
			}
			next := rlCfg(tc.next)
			next.ApplyDefaults()
			second, err := Compile(next, first, opts)
			if err != nil {
				t.Fatal(err)
			}
			first.Close()
			defer second.Close()
			if got := get(second); got != tc.status {
				t.Fatalf("after recompiling: status %d, want %d", got, tc.status)
			}
		})
	}
}

// serve runs h on a request from remote, without a network.
func serve(h http.Handler, remote string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = remote
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitKeyFloodStaysBounded(t *testing.T) {
	t.Parallel()
	const maxKeys, flood = 1000, 100_000
	tests := []struct {
		name string
		key  string
		req  func(i int) (remote string, header http.Header)
	}{
		{
			name: "distinct header values",
			key:  "header:X-User",
			req: func(i int) (string, http.Header) {
				return "127.0.0.1:1", http.Header{"X-User": {fmt.Sprintf("user-%d-%s", i, strings.Repeat("x", i%200))}}
			},
		},
		{
			name: "distinct client addresses",
			key:  "client_ip",
			req: func(i int) (string, http.Header) {
				a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				return netip.AddrPortFrom(a, 1000).String(), nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := rlCfg(schemas.RateLimit{Rate: 1, Per: schemas.Duration(time.Hour), Burst: 1, Key: tc.key, MaxKeys: maxKeys})
			cfg.ApplyDefaults()
			clock := newFakeClock() // frozen: no bucket ever refills, so only the cap evicts
			set, err := Compile(cfg, nil, Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			h := set.Wrap("r", []string{"rl"}, okHandler)
			store := set.limiters["rl"]
			req := httptest.NewRequest("GET", "/", nil)
			var w statusWriter
			for i := range flood {
				req.RemoteAddr, req.Header = tc.req(i)
				h.ServeHTTP(&w, req)
				if w.status != http.StatusOK {
					t.Fatalf("request %d of a new key: %d", i, w.status)
				}
				if i%10_000 == 0 {
					if n := store.len(); n > maxKeys {
						t.Fatalf("after %d keys the store holds %d buckets, cap %d", i+1, n, maxKeys)
					}
				}
			}
			if n := store.len(); n > maxKeys || n < maxKeys/2 {
				t.Fatalf("store holds %d buckets after the flood, want at most %d (and most of them used)", n, maxKeys)
			}
			for i := range store.shards {
				for _, e := range store.shards[i].m {
					if len(e.key.s) > maxKeyBytes+len("sha256:") {
						t.Fatalf("bucket key of %d bytes kept", len(e.key.s))
					}
				}
			}
		})
	}
}

func TestRateLimitIdleBucketsExpire(t *testing.T) {
	t.Parallel()
	cfg := rlCfg(schemas.RateLimit{Rate: 10, Burst: 10, Key: "header:X-User"})
	cfg.ApplyDefaults()
	clock := newFakeClock()
	set, err := Compile(cfg, nil, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := set.Wrap("r", []string{"rl"}, http.NotFoundHandler())
	for i := range 500 {
		serve(h, "127.0.0.1:1", http.Header{"X-User": {fmt.Sprint("a", i)}})
	}
	before := set.limiters["rl"].len()
	clock.Advance(2 * time.Second) // every bucket is full again
	for i := range 500 {
		serve(h, "127.0.0.1:1", http.Header{"X-User": {fmt.Sprint("b", i)}})
	}
	// Inserting dropped the idle buckets of each shard: only new keys stay.
	if after := set.limiters["rl"].len(); before != 500 || after != 500 {
		t.Fatalf("buckets: %d before, %d after, want 500 and 500 (old idle ones dropped)", before, after)
	}
}

// statusWriter is a ResponseWriter that keeps only the status, for loops
// where a recorder per request would dominate the cost.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *statusWriter) WriteHeader(code int) { w.status = code }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
