package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "o-webhook-bogus-flood",
		criterion: "20 concurrent 24 MB webhook deliveries with a bogus signature (chunked, no length declared) and 20 " +
			"declaring 24 MB: each is answered 413 or 503 (or cut), the agent's resident memory grows by less than " +
			"64 MiB over its level before (sampled every 10 ms), and a signed push afterwards is accepted and c2 served",
		run: webhookBogusFlood,
	})
}

// zeroReader is an endless source of zero bytes: a large body the sender
// never holds.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func webhookBogusFlood(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	pid := st.Agent.Pid()
	base, err := harness.RSS(pid)
	if err != nil {
		return err
	}
	peak := base
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v, err := harness.RSS(pid); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	const (
		senders = 20
		size    = 24 << 20
	)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
		cut   int
	)
	hc := &http.Client{Timeout: time.Minute}
	for i := range 2 * senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body io.Reader = io.LimitReader(zeroReader{}, size)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.HookAddr+"/webhooks/github", body)
			if err != nil {
				return
			}
			if i%2 == 1 {
				req.ContentLength = size // declared: refused before reading
			}
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i))
			req.Header.Set("X-Hub-Signature-256", "sha256="+fmt.Sprintf("%064d", 0))
			resp, err := hc.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cut++
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	growth := peak - base
	t.Logf("%d bogus deliveries of %d MiB: answers %v, %d cut; agent RSS %d MiB before, peak %d MiB (+%d MiB)",
		2*senders, size>>20, codes, cut, base>>10, peak>>10, growth>>10)
	for code := range codes {
		if code != http.StatusRequestEntityTooLarge && code != http.StatusServiceUnavailable {
			return fmt.Errorf("answers %v: want only 413 and 503", codes)
		}
	}
	if growth > 64<<10 {
		return fmt.Errorf("agent RSS grew by %d MiB under the flood, want under 64 MiB", growth>>10)
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return fmt.Errorf("signed push after the flood: %w", err)
	}
	return t.waitServed(ctx, st, c2, "c2")
}
