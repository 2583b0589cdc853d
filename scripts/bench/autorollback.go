package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// Settings of -mode autorollback.
const (
	// arRate is the steady load on /shop, requests per second.
	arRate = 200
	// arSafety is every commit's safety section: 5 s checks, two breaches
	// in a row, a window that just holds them.
	arSafety = `safety:
  bakeWindow: 12s
  checkInterval: 5s
  breaches: 2
  minRequests: 100
`
)

// arRun is one run of -mode autorollback: a fresh gateway and agent.
type arRun struct {
	// good counts the good commits' bake results ("passed", ...).
	good map[string]int
	// detect is from the gateway applying the bad commit to it serving
	// the previous one again.
	detect time.Duration
	reason string
	sent   int64
	failed int64
}

// autoRollbackBench runs the real gateway and agent under a steady
// non-retrying load of arRate requests per second on route shop, whose
// backend fails 1% of requests at random. The first run bakes
// cfg.goodCommits good commits (each changes shop) and counts the ones
// rolled back or reported; every run then commits a change that sends half
// of shop to a backend answering 500 and times the automatic rollback,
// from the gateway applying it to the gateway serving the commit before.
func autoRollbackBench(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	bins, err := harness.Build(ctx, root, filepath.Join(env.dir, "bin"))
	if err != nil {
		return "", err
	}
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(100) == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer flaky.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer broken.Close()
	var runs []arRun
	for i := range max(cfg.runs, 1) {
		dir := filepath.Join(env.dir, fmt.Sprintf("autorollback-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		good := 0
		if i == 0 {
			good = cfg.goodCommits
		}
		r, err := autoRollbackOnce(ctx, bins, dir, flaky.URL, broken.URL, good)
		if err != nil {
			return "", fmt.Errorf("autorollback run %d: %w (logs in %s)", i+1, err, dir)
		}
		fmt.Fprintf(os.Stderr, "autorollback run %d: detection %s, good commits %v\n", i+1, r.detect.Round(10*time.Millisecond), r.good)
		runs = append(runs, r)
	}
	return autoRollbackReport(runs, cfg.goodCommits), nil
}

// arConfig routes / to flaky (labelled, for the served check) and /shop
// to flaky, brokenWeight percent of it to broken; rev marks shop's
// responses so that each commit changes shop.
func arConfig(flaky, broken, label string, rev, brokenWeight int) string {
	return fmt.Sprintf(`upstreams:
  flaky:
    targets: [%q]
  broken:
    targets: [%q]
routes:
  main:
    match:
      path: /
      pathType: prefix
    backends:
      - upstream: flaky
        weight: 100
    responseHeaders:
      set:
        X-Config: %q
  shop:
    match:
      path: /shop
      pathType: prefix
    backends:
      - upstream: flaky
        weight: %d
      - upstream: broken
        weight: %d
    responseHeaders:
      set:
        X-Rev: "%d"
`, flaky, broken, label, 100-brokenWeight, brokenWeight, rev) + arSafety
}

func autoRollbackOnce(ctx context.Context, bins harness.Bins, dir, flaky, broken string, goodCommits int) (arRun, error) {
	r := arRun{good: map[string]int{}}
	st, err := harness.NewStack(harness.Options{Bins: bins, Dir: dir})
	if err != nil {
		return r, err
	}
	defer st.Close()
	c0, err := st.Repo.WriteCommit("config.yaml", arConfig(flaky, broken, "c0", 0, 0), "c0")
	if err != nil {
		return r, err
	}
	if err := st.StartGateway(ctx); err != nil {
		return r, err
	}
	if err := st.StartAgent(ctx); err != nil {
		return r, err
	}
	if err := waitHead(ctx, st, c0, 30*time.Second); err != nil {
		return r, err
	}
	ctl := controlClient(st.ControlSocket)
	defer ctl.CloseIdleConnections()
	ld := startArLoad(st.GatewayAddr)
	defer ld.stop()
	// c0's bake is the first; each good commit's bake must end before
	// the next commit, or the next one cuts it short.
	if _, err := waitBake(ctx, ctl, c0); err != nil {
		return r, err
	}
	last := c0
	for i := 1; i <= goodCommits; i++ {
		label := fmt.Sprintf("c%d", i)
		sha, err := commitAndWait(ctx, st, arConfig(flaky, broken, label, i, 0), label)
		if err != nil {
			return r, err
		}
		b, err := waitBake(ctx, ctl, sha)
		if err != nil {
			return r, err
		}
		r.good[b.Result]++
		last = sha
	}
	bad, err := st.Repo.WriteCommit("config.yaml", arConfig(flaky, broken, "bad", goodCommits+1, 50), "bad")
	if err != nil {
		return r, err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return r, err
	}
	if err := waitHead(ctx, st, bad, 30*time.Second); err != nil {
		return r, err
	}
	applied := time.Now()
	if err := waitHead(ctx, st, last, 60*time.Second); err != nil {
		return r, fmt.Errorf("no automatic rollback: %w", err)
	}
	r.detect = time.Since(applied)
	if err := harness.WaitFor(ctx, 10*time.Second, "the auto-rollback history entry", func() (bool, error) {
		h, err := st.History(ctx)
		if err != nil {
			return false, nil
		}
		for _, e := range h {
			if e.Trigger == "auto-rollback" {
				r.reason = strings.TrimPrefix(e.Error, "auto-rollback: ")
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return r, err
	}
	r.sent, r.failed = ld.stop()
	return r, nil
}

// commitAndWait commits config, sends the webhook and waits until the
// gateway runs the commit.
func commitAndWait(ctx context.Context, st *harness.Stack, config, label string) (string, error) {
	sha, err := st.Repo.WriteCommit("config.yaml", config, label)
	if err != nil {
		return "", err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return "", err
	}
	return sha, waitHead(ctx, st, sha, 30*time.Second)
}

// waitHead polls the gateway's admin socket every 10 ms until it runs
// version.
func waitHead(ctx context.Context, st *harness.Stack, version string, timeout time.Duration) error {
	return harness.WaitFor(ctx, timeout, "the gateway to run "+version[:12], func() (bool, error) {
		return st.GatewayHead(ctx) == version, nil
	})
}

// bakeStatus is the agent's bake as its control socket shows it.
type bakeStatus struct {
	Version string `json:"version"`
	Done    bool   `json:"done"`
	Result  string `json:"result"`
}

// waitBake waits until the agent's bake of version ended and returns it.
func waitBake(ctx context.Context, c *http.Client, version string) (bakeStatus, error) {
	var b bakeStatus
	err := harness.WaitFor(ctx, 60*time.Second, "the bake of "+version[:12]+" to end", func() (bool, error) {
		var st struct {
			Bake *bakeStatus `json:"bake"`
		}
		resp, err := c.Get("http://agent/v1/status")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Bake == nil {
			return false, nil
		}
		b = *st.Bake
		if !b.Done || b.Version != version {
			time.Sleep(200 * time.Millisecond)
			return false, nil
		}
		return true, nil
	})
	return b, err
}

// controlClient talks HTTP to the agent's control socket.
func controlClient(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// arLoad sends GET /shop/item at arRate per second, each on a new
// connection and never retried, and counts the requests and the failures
// (a transport error or a 5xx).
type arLoad struct {
	sent, failed atomic.Int64
	done         chan struct{}
	once         sync.Once
	wg           sync.WaitGroup
}

func startArLoad(addr string) *arLoad {
	l := &arLoad{done: make(chan struct{})}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / arRate)
		defer tick.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-tick.C:
			}
			l.wg.Go(func() {
				l.sent.Add(1)
				resp, err := c.Get("http://" + addr + "/shop/item")
				if err != nil {
					l.failed.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					l.failed.Add(1)
				}
			})
		}
	})
	return l
}

// stop ends the load, waits for the requests in flight and returns the
// counts; it may be called again.
func (l *arLoad) stop() (sent, failed int64) {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	return l.sent.Load(), l.failed.Load()
}

func autoRollbackReport(runs []arRun, goodCommits int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Automatic rollback (a bad commit applied -> the previous one served again)\n\n")
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "%s, %d CPUs, %s; %s\n\n", host, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "The real gateway and agent; %d req/s on route shop from a non-retrying client (a new connection per request), "+
		"shop's backend failing 1%% of requests at random. Safety: checks every 5s, 2 breaches in a row, bake window 12s, "+
		"minRequests 100. The bad commit sends half of shop to a backend answering 500. Goals: detection under 15 s, "+
		"0 false rollbacks over %d good commits.\n\n", arRate, goodCommits)
	b.WriteString("| run | good commits baked | passed | rolled back or reported | detection | requests (failed) | reason |\n|---|---:|---:|---:|---:|---:|---|\n")
	var ds []time.Duration
	falses, baked := 0, 0
	for i, r := range runs {
		n, bad := 0, 0
		for res, k := range r.good {
			n += k
			if res == "rolled back" || res == "reported" {
				bad += k
			}
		}
		baked, falses = baked+n, falses+bad
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %s | %d (%d) | %s |\n", i+1, n, r.good["passed"], bad,
			fmt.Sprintf("%.1f s", r.detect.Seconds()), r.sent, r.failed, r.reason)
		ds = append(ds, r.detect)
	}
	fmt.Fprintf(&b, "| **all** | %d | | **%d** | **median %.1f s, max %.1f s** | | |\n", baked, falses, pct(ds, 0.5).Seconds(), pct(ds, 1).Seconds())
	return b.String()
}
