package main

import (
	"context"
	"fmt"
	"io"
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
			name: "q-autorollback",
			criterion: "under ~200 req/s of /shop from a non-retrying client, c2 sends half of shop to a backend answering 500; " +
				"the agent rolls back to c1 within its bake checks (1s interval, 2 breaches), marks c2 bad, records an " +
				"auto-rollback history entry quoting the 5xx ratio, and the gateway serves c1 again",
			run:   autoRollback,
			waits: true,
		},
		scenario{
			name: "q2-autorollback-unrelated",
			criterion: "with shop already failing half its requests, a commit that changes only another route is not rolled " +
				"back: the bake ends without a rollback and the agent keeps tracking the branch",
			run:   autoRollbackUnrelated,
			waits: true,
		},
	)
}

// safetyYAML is a short bake for the battery.
const safetyYAML = `safety:
  bakeWindow: %s
  checkInterval: 1s
  breaches: 2
  minRequests: 50
`

// shopLoad sends GET /shop at about rate per second, each on a new
// connection and never retried, until stop; it counts the answers.
type shopLoad struct {
	sent, failed atomic.Int64
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startShopLoad(st *harness.Stack, rate int) *shopLoad {
	l := &shopLoad{stop: make(chan struct{})}
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
				r := st.Get("/shop/item")
				l.sent.Add(1)
				if r.Err != nil || r.Code >= 500 {
					l.failed.Add(1)
				}
			})
		}
	})
	return l
}

func (l *shopLoad) Stop() { close(l.stop); l.wg.Wait() }

func autoRollbackStack(ctx context.Context, t *T) (*harness.Stack, func(label string, brokenWeight int, window string) (string, error), error) {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return nil, nil, err
	}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(good.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(broken.Close)
	commit := func(label string, brokenWeight int, window string) (string, error) {
		cfg := trafficConfigYAML(good.URL, broken.URL, label, brokenWeight)
		if window != "" {
			cfg += fmt.Sprintf(safetyYAML, window)
		}
		sha, err := st.Repo.WriteCommit("config.yaml", cfg, label)
		if err != nil {
			return "", err
		}
		if _, err := st.Webhook(ctx); err != nil {
			return "", err
		}
		return sha, t.waitServed(ctx, st, sha, label)
	}
	return st, commit, nil
}

func autoRollback(ctx context.Context, t *T) error {
	st, commit, err := autoRollbackStack(ctx, t)
	if err != nil {
		return err
	}
	c1, err := commit("c1", 0, "30s")
	if err != nil {
		return err
	}
	load := startShopLoad(st, 200)
	defer load.Stop()
	time.Sleep(2 * time.Second) // the baseline: c1's shop traffic
	c2, err := commit("c2", 50, "30s")
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
	if !strings.Contains(e.Error, "5xx") || !strings.Contains(e.Error, "route shop") {
		return fmt.Errorf("auto-rollback entry %+v: want it to quote shop's 5xx", e)
	}
	if err := expectServing(st, "c1", 5); err != nil {
		return err
	}
	t.Logf("detection: c2 served to c1 served again in %s (1s checks, 2 breaches); reason: %s", detect.Round(10*time.Millisecond), e.Error)
	t.Logf("load: %d requests sent, %d failed", load.sent.Load(), load.failed.Load())
	return nil
}

// waitAutoRollback waits until the agent recorded the automatic rollback
// from bad to good (it pins and marks bad after the gateway already serves
// good, so the gateway's head alone comes a moment too early) and returns
// its history entry.
func waitAutoRollback(ctx context.Context, st *harness.Stack, good, bad string) (harness.Entry, error) {
	var (
		as harness.AgentStatus
		e  harness.Entry
	)
	err := harness.WaitFor(ctx, 10*time.Second, "the agent to record the automatic rollback", func() (bool, error) {
		var err error
		if as, err = st.AgentStatus(ctx); err != nil || as.Pin == nil {
			return false, nil
		}
		h, err := st.History(ctx)
		if err != nil {
			return false, nil
		}
		i := slices.IndexFunc(h, func(e harness.Entry) bool { return e.Trigger == "auto-rollback" })
		if i >= 0 {
			e = h[i]
		}
		return i >= 0, nil
	})
	if err != nil {
		return e, fmt.Errorf("%w: agent status %+v", err, as)
	}
	if as.Pin.SHA != good || as.Pin.From != bad || !slices.Contains(as.Bad, bad) || e.SHA != good {
		return e, fmt.Errorf("agent status %+v, auto-rollback entry %+v: want pinned to %s from %s, %s marked bad", as, e, short(good), short(bad), short(bad))
	}
	return e, nil
}

func autoRollbackUnrelated(ctx context.Context, t *T) error {
	st, commit, err := autoRollbackStack(ctx, t)
	if err != nil {
		return err
	}
	// c1 has no safety section: shop fails half its requests already,
	// unjudged.
	if _, err := commit("c1", 50, ""); err != nil {
		return err
	}
	load := startShopLoad(st, 200)
	defer load.Stop()
	time.Sleep(2 * time.Second)
	c2, err := commit("c2", 50, "5s") // turns safety on; only route main's label changes
	if err != nil {
		return err
	}
	var bake string
	if err := harness.WaitFor(ctx, 20*time.Second, "c2's bake window to end", func() (bool, error) {
		out, err := st.CLI(ctx, "status")
		bake = out
		return err == nil && strings.Contains(out, "Bake:") && !strings.Contains(out, "in progress"), err
	}); err != nil {
		return err
	}
	as, err := st.AgentStatus(ctx)
	if err != nil {
		return err
	}
	if as.Mode != "tracking" || as.LastApplied != c2 || len(as.Bad) > 0 || strings.Contains(bake, "rolled back") {
		return fmt.Errorf("agent status %+v: want c2 applied and tracking, nothing rolled back", as)
	}
	if err := expectServing(st, "c2", 5); err != nil {
		return err
	}
	t.Logf("status after the bake:\n%s", bake)
	return nil
}
