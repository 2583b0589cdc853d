package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// foUpstreamEnv makes this binary an upstream process instead of the
// battery: "addr,group" serves group's name on addr (and 200 on /healthz)
// until killed. The scenario starts each target as such a process, so it
// can SIGKILL a whole region.
const foUpstreamEnv = "GITGATE_E2E_FO_UPSTREAM"

func init() {
	if v := os.Getenv(foUpstreamEnv); v != "" {
		addr, group, _ := strings.Cut(v, ",")
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Group", group)
			_, _ = io.WriteString(w, group)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scenarios = append(scenarios, scenario{
		name: "fo-primary-region-killed-under-load",
		criterion: "a failover upstream over groups eu (primary) and us, each two upstream processes with a 500ms " +
			"health check, serves a retrying client loop; the eu processes are killed with SIGKILL under load: 0 " +
			"requests fail, us serves, GET /v1/status names us active and the gateway logs the change (the time from " +
			"the kill to the status change is reported); restarted on the same ports, eu takes the traffic back " +
			"(status eu, log line), with no commit in between and still 0 failed requests",
		run: failoverPrimaryKilled,
	})
}

// foRegion is the upstream processes of one failover group.
type foRegion struct {
	group string
	addrs []string
	procs []*harness.Proc
}

func (g *foRegion) start(ctx context.Context, t *T) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the battery's binary: %w", err)
	}
	g.procs = g.procs[:0]
	for i, addr := range g.addrs {
		p, err := harness.Start(t.dir, fmt.Sprintf("upstream-%s-%d", g.group, i), "env", foUpstreamEnv+"="+addr+","+g.group, self)
		if err != nil {
			return err
		}
		g.procs = append(g.procs, p)
		t.Cleanup(func() {
			if !p.Exited() { // a killed one's pid may belong to another process by now
				p.Kill9()
			}
		})
		if err := harness.WaitFor(ctx, 10*time.Second, "upstream "+g.group+" on "+addr, func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("upstream %s exited: %v (see %s)", g.group, p.Err(), p.Log)
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (g *foRegion) kill() {
	for _, p := range g.procs {
		p.Kill9()
	}
}

// foLoad is a client loop that retries each request until it gets a 200
// (up to 50 tries, 20ms apart, so a probe that a loaded machine slows down
// cannot fail a request), and counts what it saw.
type foLoad struct {
	requests, failed, clientRetries atomic.Int64
	mu                              sync.Mutex
	byGroup                         map[string]int
	firstAt                         map[string]time.Time // first 200 from each group
	lastErr                         string
}

func (l *foLoad) run(ctx context.Context, url string, workers int) *sync.WaitGroup {
	l.byGroup, l.firstAt = map[string]int{}, map[string]time.Time{}
	c := &http.Client{Timeout: 2 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.one(ctx, c, url)
			}
		})
	}
	return &wg
}

func (l *foLoad) one(ctx context.Context, c *http.Client, url string) {
	l.requests.Add(1)
	for try := range 50 {
		if try > 0 {
			l.clientRetries.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil) // not ctx: a request in flight finishes
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g := resp.Header.Get("X-Group")
				l.mu.Lock()
				if l.byGroup[g]++; l.byGroup[g] == 1 {
					l.firstAt[g] = time.Now()
				}
				l.mu.Unlock()
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		l.mu.Lock()
		l.lastErr = err.Error()
		l.mu.Unlock()
		if ctx.Err() != nil && try > 0 {
			break
		}
	}
	l.failed.Add(1)
}

func (l *foLoad) served(group string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byGroup[group]
}

func failoverPrimaryKilled(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	eu, us := &foRegion{group: "eu"}, &foRegion{group: "us"}
	for _, g := range []*foRegion{eu, us} {
		for range 2 {
			a, err := harness.FreeAddr()
			if err != nil {
				return err
			}
			g.addrs = append(g.addrs, a)
		}
		if err := g.start(ctx, t); err != nil {
			return err
		}
	}
	var cfg strings.Builder
	cfg.WriteString("upstreams:\n")
	for _, g := range []*foRegion{eu, us} {
		fmt.Fprintf(&cfg, "  %s:\n    targets: [http://%s, http://%s]\n", g.group, g.addrs[0], g.addrs[1])
		cfg.WriteString("    healthCheck: {path: /healthz, interval: 500ms, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 1}\n")
	}
	cfg.WriteString(`  api:
    failover:
      groups: [eu, us]
routes:
  main:
    match: {path: /, pathType: prefix}
    backends: [{upstream: api, weight: 100}]
    retries: {attempts: 2, on: [connect-failure, reset, "502", "503"], budgetPercent: 100}
    responseHeaders: {set: {X-Config: fo}}
`)
	sha, err := t.pushServed(ctx, st, cfg.String(), "fo: api fails over from eu to us", "fo")
	if err != nil {
		return err
	}
	active := func() (string, uint64, error) {
		s, err := st.Admin.Status(ctx)
		if err != nil {
			return "", 0, err
		}
		f, ok := s.Failover["api"]
		if !ok {
			return "", 0, errors.New("GET /v1/status has no failover entry for api")
		}
		return f.Active, f.Changes, nil
	}
	if a, _, err := active(); err != nil || a != "eu" {
		return fmt.Errorf("before the outage: active %q (%v), want eu", a, err)
	}

	loadCtx, stop := context.WithCancel(ctx)
	load := &foLoad{}
	wg := load.run(loadCtx, "http://"+st.GatewayAddr+"/", 4)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	defer stopLoad()
	time.Sleep(500 * time.Millisecond)
	if load.served("eu") == 0 {
		return fmt.Errorf("eu served nothing before the outage (%d requests)", load.requests.Load())
	}

	// The outage: both eu processes die at once, under load.
	killed := time.Now()
	eu.kill()
	usBefore := load.served("us")
	if usBefore != 0 {
		return fmt.Errorf("us served %d requests before the outage", usBefore)
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "status to name us active", func() (bool, error) {
		a, _, err := active()
		return a == "us", err
	}); err != nil {
		return err
	}
	failover := time.Since(killed)
	time.Sleep(time.Second)
	if load.served("us") == usBefore {
		return errors.New("us served nothing during the outage")
	}
	load.mu.Lock()
	firstUS := load.firstAt["us"].Sub(killed)
	load.mu.Unlock()

	// eu comes back on the same ports: traffic fails back without a commit.
	back := time.Now()
	if err := eu.start(ctx, t); err != nil {
		return err
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "status to name eu active again", func() (bool, error) {
		a, _, err := active()
		return a == "eu", err
	}); err != nil {
		return err
	}
	failback := time.Since(back)
	euBack := load.served("eu")
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	if load.served("eu") == euBack {
		return errors.New("eu served nothing after it came back")
	}
	if n := load.failed.Load(); n != 0 {
		return fmt.Errorf("%d of %d requests failed after the client's retries (last error: %s)", n, load.requests.Load(), load.lastErr)
	}
	_, changes, err := active()
	if err != nil {
		return err
	}
	if changes != 2 {
		return fmt.Errorf("status counts %d changes of the active group, want 2", changes)
	}
	for _, line := range []string{`"from":"eu","to":"us"`, `"from":"us","to":"eu"`} {
		if !logContains(st.Gateway.Log, line) {
			return fmt.Errorf("the gateway log has no line with %s (see %s)", line, st.Gateway.Log)
		}
	}
	if head := st.GatewayHead(ctx); head != sha {
		return fmt.Errorf("the gateway runs %s, want the one commit %s: failover took no commit", short(head), short(sha))
	}
	t.Logf("requests %d, failed 0, client retries %d; served by eu %d, us %d", load.requests.Load(), load.clientRetries.Load(), load.served("eu"), load.served("us"))
	t.Logf("failover: first answer from us %s after the kill (a retry of a failed attempt moves to the next group); "+
		"status named us active %s after the kill (health-check interval 500ms); failback: eu active %s after its processes started",
		firstUS.Round(time.Millisecond), failover.Round(time.Millisecond), failback.Round(time.Millisecond))
	return nil
}
