package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "p-traffic-per-version",
		criterion: "c2 sends half of route shop to a backend answering 500; after 100 requests to /shop the gateway's " +
			"status shows, for the running version, 100 shop requests whose 5xx are exactly the broken backend's and " +
			"whose 2xx the good one's; after c3 sends shop to the good backend only, those counts are the previous " +
			"version's and the new version's shop counts have no 5xx",
		run: trafficPerVersion,
	})
}

// trafficConfigYAML routes / to good (for the battery's served check) and
// /shop to good and broken, brokenWeight percent to broken.
func trafficConfigYAML(good, broken, label string, brokenWeight int) string {
	return fmt.Sprintf(`upstreams:
  good:
    targets: [%q]
  broken:
    targets: [%q]
routes:
  main:
    match:
      path: /
      pathType: prefix
    backends:
      - upstream: good
        weight: 100
    responseHeaders:
      set:
        X-Config: %q
  shop:
    match:
      path: /shop
      pathType: prefix
    backends:
      - upstream: good
        weight: %d
      - upstream: broken
        weight: %d
`, good, broken, label, 100-brokenWeight, brokenWeight)
}

func trafficPerVersion(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(good.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(broken.Close)

	commit := func(label string, brokenWeight int) error {
		sha, err := st.Repo.WriteCommit("config.yaml", trafficConfigYAML(good.URL, broken.URL, label, brokenWeight), label)
		if err != nil {
			return err
		}
		if _, err := st.Webhook(ctx); err != nil {
			return err
		}
		return t.waitServed(ctx, st, sha, label)
	}
	shop := func(n int) {
		for range n {
			st.Get("/shop/item")
		}
	}
	if err := commit("c2", 50); err != nil {
		return err
	}
	shop(100)
	s, err := st.Admin.Status(ctx)
	if err != nil {
		return err
	}
	if s.Traffic == nil || s.Traffic.Current == nil || s.Traffic.Current.Version != s.Version {
		return fmt.Errorf("status traffic %+v: want the running version %s", s.Traffic, s.Version)
	}
	c2 := s.Version
	got := s.Traffic.Current.Routes["shop"]
	if err := checkSplit(got, 100); err != nil {
		return fmt.Errorf("c2: %w", err)
	}
	t.Logf("c2 shop: %d requests, %d 5xx (broken backend %d), %d 2xx", got.Requests, got.Responses.Class5xx,
		got.Backends["broken"].Requests, got.Responses.Class2xx)

	if err := commit("c3", 0); err != nil {
		return err
	}
	shop(20)
	s, err = st.Admin.Status(ctx)
	if err != nil {
		return err
	}
	prev, cur := s.Traffic.Previous, s.Traffic.Current
	if prev == nil || prev.Version != c2 || prev.Until.IsZero() {
		return fmt.Errorf("previous traffic %+v: want %s, ended", prev, c2)
	}
	if err := checkSplit(prev.Routes["shop"], 100); err != nil {
		return fmt.Errorf("c2 as previous: %w", err)
	}
	if c := cur.Routes["shop"]; c.Requests != 20 || c.Responses.Class5xx != 0 || c.Responses.Class2xx != 20 {
		return fmt.Errorf("c3 shop %+v: want 20 requests, all 2xx", c.Counts)
	}
	return nil
}

// checkSplit checks n requests of a route split between good and broken.
func checkSplit(rt client.RouteTraffic, n uint64) error {
	g, b := rt.Backends["good"], rt.Backends["broken"]
	switch {
	case rt.Requests != n:
		return fmt.Errorf("shop %d requests, want %d", rt.Requests, n)
	case b.Requests == 0 || g.Requests == 0:
		return fmt.Errorf("a 50/50 split sent everything one way: good %d broken %d", g.Requests, b.Requests)
	case rt.Responses.Class5xx != b.Requests || b.Responses.Class5xx != b.Requests:
		return fmt.Errorf("shop 5xx %d, broken backend %d requests (%d 5xx): want equal", rt.Responses.Class5xx, b.Requests, b.Responses.Class5xx)
	case rt.Responses.Class2xx != g.Requests:
		return fmt.Errorf("shop 2xx %d, good backend %d requests: want equal", rt.Responses.Class2xx, g.Requests)
	}
	return nil
}
