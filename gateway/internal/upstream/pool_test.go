package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func defaulted(u schemas.Upstream) schemas.Upstream {
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": u}}
	cfg.ApplyDefaults()
	return cfg.Upstreams["u"]
}

func mustPool(t *testing.T, u schemas.Upstream, clock *fakeClock) *Pool {
	t.Helper()
	opts := Options{}
	if clock != nil {
		opts.Now = clock.Now
	}
	p, err := NewPool("u", defaulted(u), opts)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func targets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://10.0.0.%d:80", i+1)
	}
	return out
}

func TestNewPoolRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		spec schemas.Upstream
		path string
	}{
		{"no targets", schemas.Upstream{}, "upstreams.u.targets"},
		{"ftp target", schemas.Upstream{Targets: []string{"ftp://x"}}, "upstreams.u.targets[0]"},
		{"no host", schemas.Upstream{Targets: []string{"http://"}}, "upstreams.u.targets[0]"},
		{"unknown balance", schemas.Upstream{Targets: targets(1), Balance: "fastest"}, "upstreams.u.balance"},
		{"hash on two things", schemas.Upstream{Targets: targets(1), Balance: "hash", HashOn: &schemas.HashOn{Header: "a", ClientIP: true}}, "upstreams.u.hashOn"},
		{"bad ratio", schemas.Upstream{Targets: targets(1), CircuitBreaker: &schemas.CircuitBreaker{ErrorRatio: 2}}, "upstreams.u.circuitBreaker.errorRatio"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewPool("u", defaulted(tc.spec), Options{})
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *schemas.InvalidError", err)
			}
			if inv.Diagnostics[0].Path != tc.path {
				t.Fatalf("path = %q, want %q (%v)", inv.Diagnostics[0].Path, tc.path, err)
			}
		})
	}
}

func TestBalancersSpreadAndSkipUnavailable(t *testing.T) {
	t.Parallel()
	for _, balance := range []string{schemas.BalanceRoundRobin, schemas.BalanceLeastRequests, schemas.BalanceRandom, schemas.BalanceHash} {
		t.Run(balance, func(t *testing.T) {
			t.Parallel()
			p := mustPool(t, schemas.Upstream{Targets: targets(4), Balance: balance}, nil)
			p.Targets()[2].healthy.Store(false)
			counts := map[string]int{}
			const n = 4000
			for i := range n {
				tg, err := p.Pick(mix(uint64(i)), nil)
				if err != nil {
					t.Fatal(err)
				}
				counts[tg.String()]++
				p.Done(tg, Success)
			}
			if counts[p.Targets()[2].String()] != 0 {
				t.Fatalf("unhealthy target picked %d times", counts[p.Targets()[2].String()])
			}
			for _, tg := range []*Target{p.Targets()[0], p.Targets()[1], p.Targets()[3]} {
				if c := counts[tg.String()]; c < n/3/2 {
					t.Errorf("target %s picked %d of %d times, want about a third", tg, c, n)
				}
			}
		})
	}
}

func TestRoundRobinIsExact(t *testing.T) {
	t.Parallel()
	p := mustPool(t, schemas.Upstream{Targets: targets(3)}, nil)
	for i := range 9 {
		tg, _ := p.Pick(0, nil)
		if want := p.Targets()[i%3]; tg != want {
			t.Fatalf("pick %d = %s, want %s", i, tg, want)
		}
		p.Done(tg, Success)
	}
}

func TestLeastRequestsPrefersIdleTarget(t *testing.T) {
	t.Parallel()
	p := mustPool(t, schemas.Upstream{Targets: targets(2), Balance: schemas.BalanceLeastRequests}, nil)
	p.Targets()[0].inFlight.Store(100)
	for range 50 {
		tg, _ := p.Pick(0, nil)
		if tg != p.Targets()[1] {
			t.Fatalf("picked the busy target")
		}
		p.Done(tg, Success)
	}
}

func TestHashIsStickyAndMovesOnlyLostKeys(t *testing.T) {
	t.Parallel()
	p := mustPool(t, schemas.Upstream{Targets: targets(5), Balance: schemas.BalanceHash, HashOn: &schemas.HashOn{Header: "X-User"}}, nil)
	first := map[uint64]*Target{}
	for k := range uint64(500) {
		tg, _ := p.Pick(mix(k), nil)
		p.Done(tg, Success)
		again, _ := p.Pick(mix(k), nil)
		p.Done(again, Success)
		if tg != again {
			t.Fatalf("key %d moved from %s to %s", k, tg, again)
		}
		first[k] = tg
	}
	gone := p.Targets()[1]
	gone.healthy.Store(false)
	for k, was := range first {
		tg, _ := p.Pick(mix(k), nil)
		p.Done(tg, Success)
		if was != gone && tg != was {
			t.Fatalf("key %d moved from %s to %s though its target stayed", k, was, tg)
		}
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	mk := func(h map[string]string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	ip := netip.MustParseAddr("192.0.2.7")
	cases := []struct {
		name   string
		on     schemas.HashOn
		a, b   *http.Request
		same   bool
		client netip.Addr
	}{
		{"same header", schemas.HashOn{Header: "X-User"}, mk(map[string]string{"X-User": "ann"}), mk(map[string]string{"X-User": "ann"}), true, ip},
		{"other header", schemas.HashOn{Header: "X-User"}, mk(map[string]string{"X-User": "ann"}), mk(map[string]string{"X-User": "bob"}), false, ip},
		{"same cookie", schemas.HashOn{Cookie: "sid"}, mk(map[string]string{"Cookie": "sid=1; x=2"}), mk(map[string]string{"Cookie": "x=3; sid=1"}), true, ip},
		{"client ip", schemas.HashOn{ClientIP: true}, mk(nil), mk(nil), true, ip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ka, kb := Key(tc.a, &tc.on, tc.client), Key(tc.b, &tc.on, tc.client)
			if (ka == kb) != tc.same {
				t.Fatalf("keys %x %x, want same=%v", ka, kb, tc.same)
			}
		})
	}
}

func TestOutlierEjectionDoubles(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p := mustPool(t, schemas.Upstream{
		Targets:          targets(1),
		OutlierDetection: &schemas.OutlierDetection{ConsecutiveFailures: 2, BaseEjection: schemas.Duration(time.Second), MaxEjection: schemas.Duration(3 * time.Second)},
	}, clock)
	fail := func() {
		tg, err := p.Pick(0, nil)
		if err != nil {
			t.Fatalf("pick: %v", err)
		}
		p.Done(tg, Failure)
	}
	for _, wantOut := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		fail()
		fail()
		if _, err := p.Pick(0, nil); !errors.Is(err, ErrNoHealthyTarget) {
			t.Fatalf("after ejection: err = %v", err)
		}
		if !p.Status()[0].Ejected {
			t.Fatal("status does not say ejected")
		}
		clock.Advance(wantOut - time.Millisecond)
		if _, err := p.Pick(0, nil); err == nil {
			t.Fatalf("target back before %v", wantOut)
		}
		clock.Advance(time.Millisecond)
	}
}

func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p := mustPool(t, schemas.Upstream{
		Targets:        targets(2),
		CircuitBreaker: &schemas.CircuitBreaker{ConsecutiveFailures: 3, OpenDuration: schemas.Duration(10 * time.Second), HalfOpenRequests: 1},
	}, clock)
	attempt := func(o Outcome) error {
		tg, err := p.Pick(0, nil)
		if err != nil {
			return err
		}
		p.Done(tg, o)
		return nil
	}
	for range 3 {
		if err := attempt(Failure); err != nil {
			t.Fatal(err)
		}
	}
	if err := attempt(Success); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("after 3 failures: err = %v, want open", err)
	}
	if s := p.Breaker().State(); s != BreakerOpen {
		t.Fatalf("state %v", s)
	}
	clock.Advance(10 * time.Second)
	// Half-open: one probe at a time.
	probe, err := p.Pick(0, nil)
	if err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if _, err := p.Pick(0, nil); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("second concurrent probe: err = %v", err)
	}
	p.Done(probe, Failure)
	if s := p.Breaker().State(); s != BreakerOpen {
		t.Fatalf("failed probe left state %v", s)
	}
	clock.Advance(10 * time.Second)
	if err := attempt(Success); err != nil {
		t.Fatal(err)
	}
	if s := p.Breaker().State(); s != BreakerClosed {
		t.Fatalf("successful probe left state %v", s)
	}
}

func TestBreakerErrorRatio(t *testing.T) {
	t.Parallel()
	clock := newClock()
	p := mustPool(t, schemas.Upstream{
		Targets:        targets(1),
		CircuitBreaker: &schemas.CircuitBreaker{ConsecutiveFailures: 100, ErrorRatio: 0.5, MinRequests: 10},
	}, clock)
	for i := range 10 {
		tg, err := p.Pick(0, nil)
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		o := Success
		if i%2 == 1 {
			o = Failure
		}
		p.Done(tg, o)
	}
	if s := p.Breaker().State(); s != BreakerOpen {
		t.Fatalf("50%% errors over 10 requests left state %v", s)
	}
}

// TestHealthCheckMarksDownAndUp is not parallel: it counts the process's
// health-check goroutines after Close, and the parallel tests (gRPC and TLS
// health checks) run checkers of their own.
func TestHealthCheckMarksDownAndUp(t *testing.T) {
	var failing atomic.Bool
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.NotFound(w, r)
			return
		}
		probes.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	p := mustPool(t, schemas.Upstream{
		Targets: []string{srv.URL},
		// The timeout may not exceed the interval (rules.Upstream).
		HealthCheck: &schemas.HealthCheck{Path: "/ready", Interval: schemas.Duration(50 * time.Millisecond), Timeout: schemas.Duration(50 * time.Millisecond), HealthyThreshold: 2, UnhealthyThreshold: 2},
	}, nil)
	p.Start()
	eventually(t, func() bool { return probes.Load() >= 2 })
	if !p.Status()[0].Healthy {
		t.Fatal("passing target is unhealthy")
	}
	failing.Store(true)
	eventually(t, func() bool { return !p.Status()[0].Healthy })
	if _, err := p.Pick(0, nil); !errors.Is(err, ErrNoHealthyTarget) {
		t.Fatalf("pick with the only target down: %v", err)
	}
	failing.Store(false)
	eventually(t, func() bool { return p.Status()[0].Healthy })
	p.Close()
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*Pool).checkLoop") || strings.Contains(stacks, "(*Pool).probe") {
		t.Fatal("health checker goroutines still running after Close returned")
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func FuzzKey(f *testing.F) {
	f.Add("X-User", "ann", "sid=1")
	f.Fuzz(func(t *testing.T, header, value, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{cookie}
		r.Header[header] = []string{value}
		for _, on := range []schemas.HashOn{{Header: header}, {Cookie: "sid"}, {ClientIP: true}} {
			_ = Key(r, &on, netip.Addr{})
		}
	})
}
