package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "ca-hits-and-stampede",
		criterion: "a commit gives route /c a response cache; of 50 GETs of one URL only the first reaches the " +
			"counting origin and the others carry Age and Cache-Status hit; 1,000 concurrent GETs of a new URL, " +
			"sent while the origin holds the first one, reach the origin exactly once and all get its body; " +
			"responses that vary on X-Variant are stored once per variant",
		run: cacheHitsAndStampede,
	}, scenario{
		name: "ca-apply-keeps-entries",
		criterion: "after a commit that changes only another route, a cached URL of route /c is still a hit (the " +
			"origin sees no new request); after a commit that changes route /c's cache ttl, the same URL is a miss",
		run: cacheApplyKeepsEntries,
	})
}

// cacheConfigYAML routes / to the battery's upstream (for the served
// check) and /c, with a response cache, to origin.
func cacheConfigYAML(upstream, origin, label string) string {
	return cacheConfigTTL(upstream, origin, label, "1m")
}

// cacheConfigTTL is cacheConfigYAML with route /c's cache ttl.
func cacheConfigTTL(upstream, origin, label, ttl string) string {
	return fmt.Sprintf(`upstreams:
  app:
    targets: [%q]
  origin:
    targets: [%q]
routes:
  main:
    match: {path: /, pathType: prefix}
    backends: [{upstream: app, weight: 100}]
    responseHeaders:
      set: {X-Config: %q}
  cached:
    match: {path: /c, pathType: prefix}
    backends: [{upstream: origin, weight: 100}]
    cache:
      ttl: %s
`, upstream, origin, label, ttl)
}

func cacheHitsAndStampede(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	seen := map[string]int{} // origin requests by path
	hold := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/c/hot" {
			select { // the stampede arrives while the first request is held
			case <-hold:
			case <-time.After(10 * time.Second):
			}
		}
		w.Header().Set("Vary", "X-Variant")
		_, _ = io.WriteString(w, "origin "+r.URL.Path+" "+r.Header.Get("X-Variant"))
	}))
	t.Cleanup(origin.Close)
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[path]
	}

	if _, err := t.pushServed(ctx, st, cacheConfigYAML(t.upstream, origin.URL, "c2"), "c2", "c2"); err != nil {
		return err
	}
	base := "http://" + st.GatewayAddr
	tr := &http.Transport{MaxIdleConnsPerHost: 1000}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(path, variant string) (int, string, http.Header, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if variant != "" {
			req.Header.Set("X-Variant", variant)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, err
	}

	// Hits never reach the origin.
	for i := range 50 {
		code, body, h, err := get("/c/a", "")
		if err != nil {
			return err
		}
		if code != 200 || body != "origin /c/a " {
			return fmt.Errorf("GET /c/a #%d: %d %q", i+1, code, body)
		}
		if i > 0 && (!strings.HasPrefix(h.Get("Cache-Status"), "gitgate; hit") || h.Get("Age") == "") {
			return fmt.Errorf("GET /c/a #%d: Cache-Status %q, Age %q: want a hit", i+1, h.Get("Cache-Status"), h.Get("Age"))
		}
	}
	if n := count("/c/a"); n != 1 {
		return fmt.Errorf("the origin saw /c/a %d times, want 1", n)
	}
	// Vary: one stored response per variant.
	for _, v := range []string{"x", "y", "x", "y", ""} {
		if _, body, _, err := get("/c/a", v); err != nil || body != "origin /c/a "+v {
			return fmt.Errorf("variant %q: %q, %v", v, body, err)
		}
	}
	if n := count("/c/a"); n != 3 {
		return fmt.Errorf("the origin saw /c/a %d times after two more variants, want 3", n)
	}

	// A stampede of 1,000 concurrent misses: one origin request.
	const n = 1000
	var wg sync.WaitGroup
	var bad atomic.Int64
	var collapsed, hits atomic.Int64
	var firstErr atomic.Value
	var sent sync.WaitGroup
	sent.Add(n)
	for range n {
		wg.Go(func() {
			sent.Done()
			code, body, h, err := get("/c/hot", "")
			switch cs := h.Get("Cache-Status"); {
			case err != nil || code != 200 || body != "origin /c/hot ":
				bad.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
			case strings.Contains(cs, "collapsed"):
				collapsed.Add(1)
			case strings.Contains(cs, "hit"):
				hits.Add(1)
			}
		})
	}
	sent.Wait()
	// Let the requests reach the gateway while the origin holds the first;
	// the result does not depend on it: one that comes later is a hit.
	time.Sleep(time.Second)
	close(hold)
	wg.Wait()
	if b := bad.Load(); b > 0 {
		return fmt.Errorf("%d of %d stampede requests failed, first: %v", b, n, firstErr.Load())
	}
	if got := count("/c/hot"); got != 1 {
		return fmt.Errorf("the origin saw %d requests of the stampede, want 1", got)
	}
	t.Logf("stampede of %d: 1 origin request, %d answers collapsed onto it, %d hits after it", n, collapsed.Load(), hits.Load())
	s, err := st.Admin.Status(ctx)
	if err != nil {
		return err
	}
	if s.Cache == nil || s.Cache.Entries != 4 { // /c/a with no, x and y variants, /c/hot
		return fmt.Errorf("status cache %+v, want 4 entries", s.Cache)
	}
	return nil
}

func cacheApplyKeepsEntries(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	var origins atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins.Add(1)
		_, _ = io.WriteString(w, "origin "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	apply := func(label, ttl string) error {
		sha, err := st.Repo.WriteCommit("config.yaml", cacheConfigTTL(t.upstream, origin.URL, label, ttl), label)
		if err != nil {
			return err
		}
		if _, err := st.Webhook(ctx); err != nil {
			return err
		}
		return t.waitServed(ctx, st, sha, label)
	}
	get := func() (string, error) {
		resp, err := http.Get("http://" + st.GatewayAddr + "/c/page")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Cache-Status"), nil
	}
	steps := []struct {
		label, ttl string
		want       string // Cache-Status prefix after the apply
		origin     int64  // origin requests in all after it
	}{
		{"c2", "1m", "gitgate; fwd=uri-miss", 1},
		{"c3", "1m", "gitgate; hit", 1},          // only route main's X-Config changed
		{"c4", "2m", "gitgate; fwd=uri-miss", 2}, // route /c's cache changed
	}
	for _, s := range steps {
		if err := apply(s.label, s.ttl); err != nil {
			return err
		}
		cs, err := get()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(cs, s.want) || origins.Load() != s.origin {
			return fmt.Errorf("after %s: Cache-Status %q, origin requests %d; want %q and %d", s.label, cs, origins.Load(), s.want, s.origin)
		}
		t.Logf("after %s: %s", s.label, cs)
	}
	return nil
}
