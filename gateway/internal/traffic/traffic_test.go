package traffic

import (
	"sync"
	"testing"
	"time"
)

func TestBackendDone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		d      time.Duration
		class  func(c [6]uint64) uint64
		bucket int
	}{
		{"no status", 0, 0, func(c [6]uint64) uint64 { return c[0] }, 0},
		{"200 fast", 200, 500 * time.Microsecond, func(c [6]uint64) uint64 { return c[2] }, 0},
		{"on a bound", 204, time.Millisecond, func(c [6]uint64) uint64 { return c[2] }, 0},
		{"just over a bound", 302, time.Millisecond + 1, func(c [6]uint64) uint64 { return c[3] }, 1},
		{"404", 404, 30 * time.Millisecond, func(c [6]uint64) uint64 { return c[4] }, 5},
		{"503 slow", 503, time.Minute, func(c [6]uint64) uint64 { return c[5] }, len(LatencyBounds)},
		{"101", 101, 0, func(c [6]uint64) uint64 { return c[1] }, 0},
		{"out of range", 999, 0, func(c [6]uint64) uint64 { return c[0] }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b Backend
			b.Done(tc.status, tc.d)
			raw := b.read()
			c := raw.wire()
			r := c.Responses
			classes := [6]uint64{r.None, r.Class1xx, r.Class2xx, r.Class3xx, r.Class4xx, r.Class5xx}
			if c.Requests != 1 || tc.class(classes) != 1 {
				t.Fatalf("counts %+v: want one request in its class", c)
			}
			if c.Latency[tc.bucket] != 1 {
				t.Fatalf("latency %v: want bucket %d", c.Latency, tc.bucket)
			}
		})
	}
}

func TestRouteSumsBackendsAndSameUpstream(t *testing.T) {
	t.Parallel()
	r := NewRoute("shop", []string{"stable", "canary", "stable"})
	r.Backend(0).Done(200, 0)
	r.Backend(1).Done(500, 0)
	r.Backend(1).Fail(Reset)
	r.Backend(2).Done(200, 0)
	r.Backend(2).Fail(BreakerOpen)
	tr := NewSet([]*Route{r}).Read("v1", time.Unix(1, 0), time.Time{})
	shop := tr.Routes["shop"]
	if shop.Requests != 3 || shop.Responses.Class2xx != 2 || shop.Responses.Class5xx != 1 {
		t.Fatalf("route counts %+v", shop.Counts)
	}
	if s := shop.Backends["stable"]; s.Requests != 2 || s.Failures.BreakerOpen != 1 {
		t.Fatalf("stable %+v: want both of its backends summed", s)
	}
	if c := shop.Backends["canary"]; c.Requests != 1 || c.Failures.Reset != 1 || shop.Failures.Reset != 1 {
		t.Fatalf("canary %+v", c)
	}
}

func TestCountsUnderConcurrency(t *testing.T) {
	t.Parallel()
	r := NewRoute("r", []string{"u"})
	set := NewSet([]*Route{r})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				r.Backend(0).Done(200, time.Millisecond)
				_ = set.Read("v", time.Time{}, time.Time{})
			}
		})
	}
	wg.Wait()
	if n := set.Read("v", time.Time{}, time.Time{}).Routes["r"].Requests; n != 8000 {
		t.Fatalf("%d requests, want 8000", n)
	}
}

func TestDoneDoesNotAllocate(t *testing.T) {
	var b Backend
	if n := testing.AllocsPerRun(100, func() { b.Done(200, 3*time.Millisecond); b.Fail(Timeout) }); n != 0 {
		t.Fatalf("Done allocates %v times", n)
	}
}

// TestTooManyCounted: an upstream's 429 is a 4xx and is also counted on its
// own, so that a verdict counting 4xx as errors leaves it out; summed over
// backends like the classes.
func TestTooManyCounted(t *testing.T) {
	t.Parallel()
	r := NewRoute("shop", []string{"stable", "stable"})
	r.Backend(0).Done(429, 0)
	r.Backend(1).Done(429, 0)
	r.Backend(1).Done(404, 0)
	shop := NewSet([]*Route{r}).Read("v1", time.Unix(1, 0), time.Time{}).Routes["shop"]
	if shop.Responses.Class4xx != 3 || shop.Responses.Status429 != 2 {
		t.Fatalf("responses %+v: want 3 4xx of which 2 are 429", shop.Responses)
	}
	if s := shop.Backends["stable"]; s.Responses.Status429 != 2 {
		t.Fatalf("backend responses %+v: want 2 429s", s.Responses)
	}
}
