package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// TestReloadUnderLoadThroughAdminSocket keeps 32 raw keep-alive clients
// busy on a route present in every version while 200 bundles (alternating
// valid and invalid) go through the admin socket, a watcher follows the
// events, and an upgraded (WebSocket-style) connection opened before the
// applies on a route that never changes keeps echoing through them. The
// clients speak HTTP/1.1 on their own connections: http.Transport would
// silently retry a request on a kept-alive connection closed under it,
// hiding exactly the failure this test looks for. Afterwards goroutines and
// heap must come back near where they were before the load.
//
// It does not call t.Parallel: goroutine and heap counts are process-wide,
// and parallel tests only start once every sequential one has finished.
func TestReloadUnderLoadThroughAdminSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	a, b, last := upstream(t, "a"), upstream(t, "b"), upstream(t, "last")
	ws := echoUpgrades(t)
	g := startGateway(t, t.TempDir(), nil)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	ctx := context.Background()
	if _, err := g.admin.Put(ctx, reloadBundle(t, "v0", a.URL, ws.URL, "app"), ""); err != nil {
		t.Fatal(err)
	}
	// Baseline: the gateway runs v0, whose pools hold no connection yet.
	baseGoroutines, baseHeap := settledGoroutines(), heapInUse()

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

	addr := strings.TrimPrefix(g.data, "http://")
	up := dialUpgrade(t, addr, "/ws/chat")

	lctx, lcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stopClients := sync.OnceFunc(func() { lcancel(); wg.Wait() })
	defer stopClients()
	var ok, failed, reconnects atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	for range 32 {
		wg.Go(func() { keepAliveClient(lctx, addr, &ok, &reconnects, fail) })
	}
	const applies, echoEvery = 200, 20
	began := time.Now()
	for i := 1; i <= applies; i++ {
		v := fmt.Sprintf("v%d", i)
		if i%2 == 0 {
			if _, err := g.admin.Put(ctx, reloadBundle(t, v, a.URL, ws.URL, "missing"), ""); !isRejected(err) {
				t.Fatalf("invalid bundle %s: %v, want rejected", v, err)
			}
		} else {
			// Alternate b, a, b, ...: each differs from the running one.
			target := []string{a.URL, b.URL}[(i+1)/2%2]
			if _, err := g.admin.Put(ctx, reloadBundle(t, v, target, ws.URL, "app"), ""); err != nil {
				t.Fatalf("apply %s: %v", v, err)
			}
		}
		if i%echoEvery == 0 {
			up.echo(t, fmt.Sprintf("after %d applies", i))
		}
	}
	applying := time.Since(began)
	stopClients()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed requests across %d applies; first failure: %v", ok.Load(), failed.Load(), applies, firstErr.Load())
	}
	if reconnects.Load() != 0 {
		t.Fatalf("the gateway closed %d kept-alive client connections during the applies", reconnects.Load())
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

	// Back to the baseline's shape: no client connection, and a running
	// bundle whose new upstream pool has served nothing, so every pool of
	// the 100 applied versions must have been closed.
	up.close()
	if _, err := g.admin.Put(ctx, reloadBundle(t, "final", last.URL, ws.URL, "app"), ""); err != nil {
		t.Fatalf("final apply: %v", err)
	}
	// Each leaked snapshot would keep its pool's idle connections (three
	// goroutines each, counting the upstream's side); a few stragglers of
	// the test's own clients are allowed for.
	const goroutineMargin = 10
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for n = runtime.NumGoroutine(); n > baseGoroutines+goroutineMargin && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	if n > baseGoroutines+goroutineMargin {
		t.Errorf("%d goroutines after the applies, %d before (margin %d)\n%s", n, baseGoroutines, goroutineMargin, goroutineDump())
	}
	// A snapshot of these bundles weighs hundreds of KiB (reloadRoutes
	// routes), so keeping the 100 applied ones would pass this bound; the
	// bound itself leaves room for GC timing and allocator caches.
	heap := heapInUse()
	if limit := 2*baseHeap + 8<<20; heap > limit {
		t.Errorf("heap in use %d KiB after the applies, %d KiB before (limit %d KiB)", heap>>10, baseHeap>>10, limit>>10)
	}
	t.Logf("goroutines %d -> %d, heap in use %d -> %d KiB", baseGoroutines, n, baseHeap>>10, heap>>10)
}

// reloadRoutes is the number of filler routes of reloadBundle: enough that
// a leaked snapshot shows in the heap.
const reloadRoutes = 100

// reloadBundle routes "/" to target through upstream up ("app" is the one
// defined; anything else makes the bundle invalid), "/ws/" to the upgrade
// echo wsTarget (the same in every version), and reloadRoutes filler
// routes.
func reloadBundle(t *testing.T, version, target, wsTarget, up string) *schemas.Bundle {
	t.Helper()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{
			"app": {Targets: []string{target}},
			"ws":  {Targets: []string{wsTarget}},
		},
		Routes: map[string]schemas.Route{
			"all": {Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: up, Weight: 100}}},
			"ws":  {Match: schemas.Match{Path: "/ws/"}, Backends: []schemas.Backend{{Upstream: "ws", Weight: 100}}},
		},
	}
	for i := range reloadRoutes {
		cfg.Routes[fmt.Sprintf("filler-%d", i)] = schemas.Route{
			Match: schemas.Match{
				Path:    fmt.Sprintf("/filler/%d/{id}", i),
				Methods: []string{"GET"},
				Headers: map[string]schemas.StringMatch{"X-Filler": {Exact: "yes"}},
			},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}
	}
	cfg.ApplyDefaults()
	bn, err := schemas.NewBundle(version, schemas.Source{Commit: version}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return bn
}

// keepAliveClient POSTs on one kept-alive connection until ctx ends. A
// transport error or a 5xx is passed to fail; a connection the gateway
// closes is counted in reconnects and dialled again.
func keepAliveClient(ctx context.Context, addr string, ok, reconnects *atomic.Int64, fail func(error)) {
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(fmt.Errorf("dialling the gateway: %w", err))
				return
			}
			conn, br = c, bufio.NewReader(c)
		}
		// A hang guard, far above any answer's time.
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, "POST /keep HTTP/1.1\r\nHost: gateway\r\nContent-Length: 4\r\n\r\nping"); err != nil {
			fail(fmt.Errorf("writing a request: %w", err))
			return
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			fail(fmt.Errorf("reading an answer: %w", err))
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			fail(fmt.Errorf("reading an answer's body: %w", err))
			return
		case resp.StatusCode >= 500:
			fail(errors.New(resp.Status))
		default:
			ok.Add(1)
		}
		if resp.Close {
			reconnects.Add(1)
			conn.Close()
			conn = nil
		}
	}
}

// echoUpgrades is an upstream that answers an Upgrade request with 101,
// then echoes each line it reads until the connection closes.
func echoUpgrades(t *testing.T) *httptest.Server {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "upgrade only", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if brw.Flush() != nil {
			return
		}
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			if brw.Flush() != nil {
				return
			}
		}
	}))
	// Hijacked connections are not closed by Close; their handlers end
	// when the gateway closes its side.
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return srv
}

// upgraded is a client connection switched to the echo protocol.
type upgraded struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialUpgrade(t *testing.T, addr, path string) *upgraded {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade handshake: %s, want 101", resp.Status)
	}
	u := &upgraded{conn: conn, br: br}
	u.echo(t, "first")
	return u
}

// echo sends msg and checks that it comes back.
func (u *upgraded) echo(t *testing.T, msg string) {
	t.Helper()
	_ = u.conn.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if _, err := io.WriteString(u.conn, msg+"\n"); err != nil {
		t.Fatalf("upgraded connection, writing %q: %v", msg, err)
	}
	line, err := u.br.ReadString('\n')
	if want := "echo: " + msg + "\n"; err != nil || line != want {
		t.Fatalf("upgraded connection: read %q, %v; want %q", line, err, want)
	}
}

func (u *upgraded) close() { _ = u.conn.Close() }

// settledGoroutines is runtime.NumGoroutine once it stops falling, so that
// goroutines of earlier tests that are still exiting are not counted.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func isRejected(err error) bool {
	var re *client.RejectedError
	return errors.As(err, &re)
}
