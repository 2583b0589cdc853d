package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// TestReloadUnderLoadThroughAdminSocket keeps 32 keep-alive clients busy on
// a route present in every version while 200 bundles (alternating valid and
// invalid) go through the admin socket, and a watcher follows the events.
// Clients POST so that http.Transport never retries a request silently.
func TestReloadUnderLoadThroughAdminSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	t.Parallel()
	a, b := upstream(t, "a"), upstream(t, "b")
	g := startGateway(t, t.TempDir(), nil)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	ctx := context.Background()
	versions := []func(v string) *schemas.Bundle{
		func(v string) *schemas.Bundle { return bundle(t, v, a.URL, "app") },
		func(v string) *schemas.Bundle { return bundle(t, v, b.URL, "app") },
	}
	if _, err := g.admin.Put(ctx, versions[0]("v0"), ""); err != nil {
		t.Fatal(err)
	}

	// The watcher counts the events of the applies below.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var events, badIDs atomic.Int64
	watched := make(chan error, 1)
	subscribed := make(chan struct{})
	go func() {
		var last uint64
		watched <- g.admin.Subscribe(wctx, 0, func(ev client.WatchEvent) error {
			if ev.ID <= last {
				badIDs.Add(1)
			}
			last = ev.ID
			if ev.Type == client.EventReset {
				close(subscribed)
			} else {
				events.Add(1)
			}
			return nil
		})
	}()
	<-subscribed

	lctx, lcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for range 32 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for lctx.Err() == nil {
				resp, err := c.Post(g.data+"/keep", "text/plain", strings.NewReader("ping"))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	const applies = 200
	began := time.Now()
	for i := 1; i <= applies; i++ {
		v := fmt.Sprintf("v%d", i)
		if i%2 == 0 {
			if _, err := g.admin.Put(ctx, bundle(t, v, a.URL, "missing"), ""); !isRejected(err) {
				t.Fatalf("invalid bundle %s: %v, want rejected", v, err)
			}
			continue
		}
		// Alternate b, a, b, ...: each differs from the running one.
		if _, err := g.admin.Put(ctx, versions[((i+1)/2)%2](v), ""); err != nil {
			t.Fatalf("apply %s: %v", v, err)
		}
	}
	applying := time.Since(began)
	lcancel()
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed requests across %d applies; first failure: %v", ok.Load(), failed.Load(), applies, firstErr.Load())
	}
	waitFor(t, func() bool { return events.Load() == applies })
	wcancel()
	if err := <-watched; !errors.Is(err, context.Canceled) {
		t.Fatalf("watcher ended with %v", err)
	}
	if badIDs.Load() != 0 {
		t.Fatalf("%d event ids did not grow", badIDs.Load())
	}
	t.Logf("%d requests served during %d applies (%v), none failed", ok.Load(), applies, applying)
}

func isRejected(err error) bool {
	var re *client.RejectedError
	return errors.As(err, &re)
}
