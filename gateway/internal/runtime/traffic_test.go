package runtime

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestTrafficPerVersion checks the traffic facts of the running version and
// of the one it replaced: per route and backend, requests, status classes,
// gateway-made failures by cause and the latency histogram; a policy's
// refusal is not counted.
func TestTrafficPerVersion(t *testing.T) {
	t.Parallel()
	ok := named(t, "ok")
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(broken.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	t.Cleanup(failing.Close)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(slow.Close)
	failingUp := ups(failing.URL)
	failingUp.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 1, OpenDuration: schemas.Duration(time.Hour)}
	guarded := route("/guarded", to("ok", 100))
	guarded.Policies = []string{"office"}
	timeout := route("/slow", to("slow", 100))
	timeout.Timeout = schemas.Duration(20 * time.Millisecond)
	v1 := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"ok": ups(ok.URL), "broken": ups(broken.URL), "dead": ups(refusedURL(t)), "failing": failingUp, "slow": ups(slow.URL)},
		Routes: map[string]schemas.Route{
			"shop":    route("/shop", to("ok", 50), to("broken", 50)),
			"dead":    route("/dead", to("dead", 100)),
			"breaker": route("/breaker", to("failing", 100)),
			"slow":    timeout,
			"guarded": guarded,
		},
		Policies: map[string]schemas.Policy{"office": {IPAllow: &schemas.IPList{CIDRs: []string{"203.0.113.0/24"}}}},
	}
	e := newEngine(t, Options{})
	if e.Status().Traffic != nil {
		t.Fatal("traffic reported before any apply")
	}
	b1 := bundleOf(t, v1)
	if err := e.Apply(b1); err != nil {
		t.Fatal(err)
	}
	hit := func(path string, n int) {
		for range n {
			e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		}
	}
	hit("/shop", 40)
	hit("/dead", 2)
	hit("/breaker", 3) // a 502 passed on trips the breaker; then 2 breaker-open answers
	hit("/slow", 1)
	hit("/guarded", 5) // refused by ipAllow: not counted

	rep := e.Status().Traffic
	if rep == nil || rep.Current == nil || rep.Previous != nil {
		t.Fatalf("report %+v: want current only", rep)
	}
	if rep.Current.Version != b1.Version || rep.Current.Since.IsZero() || !rep.Current.Until.IsZero() {
		t.Fatalf("current %s since %v until %v: want %s, running", rep.Current.Version, rep.Current.Since, rep.Current.Until, b1.Version)
	}
	cur := rep.Current.Routes
	shop := cur["shop"]
	ok2, bad := shop.Backends["ok"], shop.Backends["broken"]
	cases := []struct {
		name      string
		got, want uint64
	}{
		{"shop requests", shop.Requests, 40},
		{"shop split adds up", ok2.Requests + bad.Requests, 40},
		{"shop 2xx are the ok backend's", shop.Responses.Class2xx, ok2.Requests},
		{"shop 5xx are the broken backend's", shop.Responses.Class5xx, bad.Requests},
		{"broken backend answered only 5xx", bad.Responses.Class5xx, bad.Requests},
		{"an upstream's own 500 is no gateway failure", bad.Failures.Reset + bad.Failures.ConnectFailure + bad.Failures.Timeout, 0},
		{"dead connect failures", cur["dead"].Failures.ConnectFailure, 2},
		{"dead 5xx", cur["dead"].Responses.Class5xx, 2},
		{"breaker open answers", cur["breaker"].Backends["failing"].Failures.BreakerOpen, 2},
		{"breaker requests", cur["breaker"].Requests, 3},
		{"slow timeouts", cur["slow"].Failures.Timeout, 1},
		{"policy refusals are not counted", cur["guarded"].Requests, 0},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if rep.Current.Total.Requests != 40+2+3+1 {
		t.Errorf("total %d requests, want 46", rep.Current.Total.Requests)
	}
	if ok2.Requests == 0 || bad.Requests == 0 {
		t.Errorf("a 50/50 split sent all 40 requests one way: ok %d broken %d", ok2.Requests, bad.Requests)
	}
	if n := len(shop.Latency); n != len(rep.LatencyBoundsSeconds)+1 {
		t.Fatalf("%d latency buckets for %d bounds", n, len(rep.LatencyBoundsSeconds))
	}
	if got := sumOf(shop.Latency); got != 40 {
		t.Errorf("shop latency histogram holds %d requests, want 40", got)
	}
	if last := cur["slow"].Latency; last[0] != 0 {
		t.Errorf("a request cut by a 20ms timeout counted under 1ms: %v", last)
	}

	// A new version starts from zero; the old one's counts stay as previous.
	v2 := v1
	v2.Routes = map[string]schemas.Route{"shop": route("/shop", to("ok", 100))}
	b2 := bundleOf(t, v2)
	if err := e.Apply(b2); err != nil {
		t.Fatal(err)
	}
	hit("/shop", 3)
	rep = e.Status().Traffic
	if rep.Previous == nil || rep.Previous.Version != b1.Version || rep.Previous.Routes["shop"].Requests != 40 || rep.Previous.Until.IsZero() {
		t.Fatalf("previous %+v: want v1's 40 shop requests and when it ended", rep.Previous)
	}
	if got := rep.Current.Routes["shop"]; got.Requests != 3 || got.Responses.Class2xx != 3 || rep.Current.Version != b2.Version {
		t.Fatalf("current %s shop %+v: want %s's 3 requests", rep.Current.Version, got.Counts, b2.Version)
	}
}

func sumOf(xs []uint64) uint64 {
	var n uint64
	for _, x := range xs {
		n += x
	}
	return n
}
