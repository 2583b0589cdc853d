package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios,
		scenario{
			name: "q3-autorollback-latency",
			criterion: "under ~200 req/s of /shop from a non-retrying client, c2 sends half of shop (p99 a few ms under c1) to " +
				"a backend answering after 2s; the agent rolls back to c1 within its bake checks, marks c2 bad, and its " +
				"auto-rollback entry quotes shop's p99 latency against the baseline",
			run:   autoRollbackLatency,
			waits: true,
		},
		scenario{
			name: "q4-autorollback-flaky-baseline",
			criterion: "shop's backend fails exactly 1% of its requests under c1 and under c2, which changes shop; with an " +
				"absolute errorRatio of 0.5% the baseline keeps the verdict ok: the bake passes, nothing is rolled back",
			run:   autoRollbackFlakyBaseline,
			waits: true,
		},
		scenario{
			name: "q5-autorollback-low-traffic",
			criterion: "at 5 req/s (below minRequests in the whole window), c2 sends half of shop to a backend answering 500; " +
				"`agent status` shows the verdict \"insufficient traffic\" during the bake and as its result, and c2 is " +
				"never rolled back",
			run:   autoRollbackLowTraffic,
			waits: true,
		},
		scenario{
			name: "q6-autorollback-rate-limit",
			criterion: "with 4xx counted as errors, c2 puts a 20 req/s rate limit on shop under ~200 req/s: most clients get " +
				"429, yet the bake passes on the requests let through and nothing is rolled back",
			run:   autoRollbackRateLimit,
			waits: true,
		},
	)
}

// load sends GET path at about rate per second from a client that never
// retries, each request on a new connection, until Stop; it counts the
// answers by status (0: no answer).
type load struct {
	mu    sync.Mutex
	codes map[int]int
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(addr, path string, rate int, timeout time.Duration) *load {
	l := &load{codes: make(map[int]int), stop: make(chan struct{})}
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.wg.Go(func() {
				code := 0
				if resp, err := c.Get("http://" + addr + path); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				l.mu.Lock()
				l.codes[code]++
				l.mu.Unlock()
			})
		}
	})
	return l
}

// Stop stops sending and waits for the requests in flight.
func (l *load) Stop() { close(l.stop); l.wg.Wait() }

// String lists the answers by status.
func (l *load) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(l.codes)) {
		parts = append(parts, fmt.Sprintf("%d: %d", code, l.codes[code]))
	}
	return strings.Join(parts, ", ")
}

func (l *load) count(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
}

// shopConfig routes / to upstream good (labelled, for the battery's served
// check) and /shop to the given upstreams with their weights; shopExtra is
// added to route shop, tail to the file (policies, safety).
type shopConfig struct {
	upstreams map[string]string // name -> URL
	shop      [][2]any          // {upstream, weight}
	shopExtra string
	tail      string
}

func (c shopConfig) yaml(label string) string {
	var b strings.Builder
	b.WriteString("upstreams:\n")
	for _, name := range slices.Sorted(maps.Keys(c.upstreams)) {
		fmt.Fprintf(&b, "  %s:\n    targets: [%q]\n", name, c.upstreams[name])
	}
	fmt.Fprintf(&b, `routes:
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
`, label)
	for _, be := range c.shop {
		fmt.Fprintf(&b, "      - upstream: %s\n        weight: %d\n", be[0], be[1])
	}
	b.WriteString(c.shopExtra)
	b.WriteString(c.tail)
	return b.String()
}

// commitConfig commits cfg labelled label, sends the webhook and waits
// until it is served.
func commitConfig(ctx context.Context, t *T, st *harness.Stack, cfg shopConfig, label string) (string, error) {
	sha, err := st.Repo.WriteCommit("config.yaml", cfg.yaml(label), label)
	if err != nil {
		return "", err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return "", err
	}
	return sha, t.waitServed(ctx, st, sha, label)
}

// bakeView is the part of `agent status --json` about the bake.
type bakeView struct {
	LastApplied string   `json:"lastApplied"`
	Mode        string   `json:"mode"`
	Bad         []string `json:"bad"`
	Bake        *struct {
		Version string `json:"version"`
		Done    bool   `json:"done"`
		Result  string `json:"result"`
		Checks  int    `json:"checks"`
		Verdict struct {
			Outcome string      `json:"outcome"`
			Reason  string      `json:"reason"`
			Routes  []routeView `json:"routes"`
		} `json:"verdict"`
	} `json:"bake"`
}

// routeView is one route's verdict in bakeView.
type routeView struct {
	Route    string `json:"route"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason"`
	Requests int    `json:"requests"`
}

func readBake(ctx context.Context, st *harness.Stack) (bakeView, error) {
	var v bakeView
	out, err := st.CLI(ctx, "status", "--json")
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal([]byte(out), &v)
}

// waitBakeEnd waits until the bake of version ended and returns the status.
func waitBakeEnd(ctx context.Context, st *harness.Stack, version string, timeout time.Duration) (bakeView, error) {
	var v bakeView
	err := harness.WaitFor(ctx, timeout, "the bake of "+short(version)+" to end", func() (bool, error) {
		var err error
		v, err = readBake(ctx, st)
		return err == nil && v.Bake != nil && v.Bake.Version == version && v.Bake.Done, err
	})
	return v, err
}

// expectNoRollback checks the agent still tracks the branch with version
// applied, nothing marked bad and no auto-rollback in history.
func expectNoRollback(ctx context.Context, st *harness.Stack, v bakeView, version string) error {
	if v.Mode != "tracking" || v.LastApplied != version || len(v.Bad) > 0 {
		return fmt.Errorf("agent status %+v: want %s applied and tracking, nothing marked bad", v, short(version))
	}
	h, err := st.History(ctx)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(h, func(e harness.Entry) bool { return e.Trigger == "auto-rollback" || e.Trigger == "regression" }); i >= 0 {
		return fmt.Errorf("history has %+v: want no rollback and no regression", h[i])
	}
	return nil
}

func okServer(t *T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(s.Close)
	return s
}

func autoRollbackLatency(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	good := okServer(t)
	slowDone := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-slowDone:
		}
		_, _ = io.WriteString(w, "slow ok")
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(slowDone) }) // runs first: slow's handlers return
	cfg := shopConfig{upstreams: map[string]string{"good": good.URL, "slow": slow.URL},
		shop: [][2]any{{"good", 100}}, tail: fmt.Sprintf(safetyYAML, "30s")}
	c1, err := commitConfig(ctx, t, st, cfg, "c1")
	if err != nil {
		return err
	}
	ld := startLoad(st.GatewayAddr, "/shop/item", 200, 10*time.Second)
	defer ld.Stop()
	time.Sleep(2 * time.Second) // the baseline: c1's shop traffic
	cfg.shop = [][2]any{{"good", 50}, {"slow", 50}}
	c2, err := commitConfig(ctx, t, st, cfg, "c2")
	if err != nil {
		return err
	}
	applied := time.Now()
	if err := harness.WaitFor(ctx, 30*time.Second, "the gateway to serve c1 again", func() (bool, error) {
		return st.GatewayHead(ctx) == c1, nil
	}); err != nil {
		return err
	}
	detect := time.Since(applied)
	e, err := waitAutoRollback(ctx, st, c1, c2)
	if err != nil {
		return err
	}
	if !strings.Contains(e.Error, "p99 latency") || !strings.Contains(e.Error, "route shop") {
		return fmt.Errorf("auto-rollback entry %+v: want it to quote shop's p99 latency", e)
	}
	if err := expectServing(st, "c1", 5); err != nil {
		return err
	}
	t.Logf("detection: c2 served to c1 served again in %s (1s checks, 2 breaches); reason: %s", detect.Round(10*time.Millisecond), e.Error)
	t.Logf("load: %s", ld)
	return nil
}

func autoRollbackFlakyBaseline(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	good := okServer(t)
	var n atomic.Uint64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%100 == 0 {
			w.WriteHeader(http.StatusInternalServerError) // exactly 1%
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(flaky.Close)
	tail := `safety:
  bakeWindow: 8s
  checkInterval: 1s
  breaches: 2
  minRequests: 50
  errorRatio: 0.005
`
	// c1 has no safety section: judged without a baseline (shop is new),
	// its 1% would cross the absolute 0.5% on its own.
	cfg := shopConfig{upstreams: map[string]string{"good": good.URL, "flaky": flaky.URL}, shop: [][2]any{{"flaky", 100}}}
	if _, err := commitConfig(ctx, t, st, cfg, "c1"); err != nil {
		return err
	}
	ld := startLoad(st.GatewayAddr, "/shop/item", 200, 5*time.Second)
	defer ld.Stop()
	time.Sleep(3 * time.Second) // c1's baseline: 1% of shop fails
	cfg.shopExtra = "    responseHeaders:\n      set:\n        X-Shop: c2\n"
	cfg.tail = tail
	c2, err := commitConfig(ctx, t, st, cfg, "c2")
	if err != nil {
		return err
	}
	v, err := waitBakeEnd(ctx, st, c2, 20*time.Second)
	if err != nil {
		return err
	}
	if v.Bake.Result != "passed" || v.Bake.Verdict.Outcome != "ok" {
		return fmt.Errorf("bake %+v: want passed, the last verdict ok", v.Bake)
	}
	if err := expectNoRollback(ctx, st, v, c2); err != nil {
		return err
	}
	if ld.count(500) == 0 {
		return fmt.Errorf("load %s: the flaky backend failed nothing", ld)
	}
	out, _ := st.CLI(ctx, "status")
	t.Logf("load: %s", ld)
	t.Logf("status after the bake:\n%s", indent(out))
	return nil
}

func autoRollbackLowTraffic(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	good := okServer(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(broken.Close)
	tail := `safety:
  bakeWindow: 6s
  checkInterval: 1s
  breaches: 2
  minRequests: 100
`
	cfg := shopConfig{upstreams: map[string]string{"good": good.URL, "broken": broken.URL}, shop: [][2]any{{"good", 100}}, tail: tail}
	if _, err := commitConfig(ctx, t, st, cfg, "c1"); err != nil {
		return err
	}
	ld := startLoad(st.GatewayAddr, "/shop/item", 5, 5*time.Second)
	defer ld.Stop()
	time.Sleep(2 * time.Second)
	cfg.shop = [][2]any{{"good", 50}, {"broken", 50}}
	c2, err := commitConfig(ctx, t, st, cfg, "c2")
	if err != nil {
		return err
	}
	var during string
	if err := harness.WaitFor(ctx, 10*time.Second, "`agent status` to show the bake's insufficient traffic", func() (bool, error) {
		out, err := st.CLI(ctx, "status")
		during = out
		return err == nil && strings.Contains(out, "in progress") && strings.Contains(out, "Verdict:       insufficient traffic"), err
	}); err != nil {
		return fmt.Errorf("%w; last status:\n%s", err, during)
	}
	v, err := waitBakeEnd(ctx, st, c2, 20*time.Second)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(v.Bake.Verdict.Routes, func(r routeView) bool { return r.Route == "shop" })
	if v.Bake.Result != "insufficient traffic" || i < 0 || v.Bake.Verdict.Routes[i].Outcome != "insufficient traffic" ||
		!strings.Contains(v.Bake.Verdict.Routes[i].Reason, "of 100 requests needed on route shop") {
		return fmt.Errorf("bake %+v: want insufficient traffic on shop", v.Bake)
	}
	if err := expectNoRollback(ctx, st, v, c2); err != nil {
		return err
	}
	if ld.count(500) == 0 {
		return fmt.Errorf("load %s: c2's broken backend got nothing", ld)
	}
	t.Logf("load: %s", ld)
	t.Logf("status during the bake:\n%s", indent(during))
	return nil
}

func autoRollbackRateLimit(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	good := okServer(t)
	tail := `policies:
  tight:
    rateLimit:
      rate: 20
      key: route
safety:
  bakeWindow: 6s
  checkInterval: 1s
  breaches: 2
  minRequests: 50
  errorStatuses: [5xx, 4xx]
`
	cfg := shopConfig{upstreams: map[string]string{"good": good.URL}, shop: [][2]any{{"good", 100}}, tail: tail}
	if _, err := commitConfig(ctx, t, st, cfg, "c1"); err != nil {
		return err
	}
	ld := startLoad(st.GatewayAddr, "/shop/item", 200, 5*time.Second)
	defer ld.Stop()
	time.Sleep(2 * time.Second)
	cfg.shopExtra = "    policies: [tight]\n"
	c2, err := commitConfig(ctx, t, st, cfg, "c2")
	if err != nil {
		return err
	}
	v, err := waitBakeEnd(ctx, st, c2, 20*time.Second)
	if err != nil {
		return err
	}
	if v.Bake.Result != "passed" || v.Bake.Verdict.Outcome != "ok" {
		return fmt.Errorf("bake %+v: want passed, the last verdict ok", v.Bake)
	}
	if err := expectNoRollback(ctx, st, v, c2); err != nil {
		return err
	}
	if ld.count(http.StatusTooManyRequests) < 100 {
		return fmt.Errorf("load %s: want the rate limit to refuse most of shop", ld)
	}
	out, _ := st.CLI(ctx, "status")
	t.Logf("load: %s", ld)
	t.Logf("status after the bake:\n%s", indent(out))
	return nil
}

// indent indents each line of s for the battery's output.
func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ")
}
