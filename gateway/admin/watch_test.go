package admin

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

func TestLongPoll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		since       string
		timeout     time.Duration
		pushAfter   bool // push v2 while the poll waits
		wantVersion string
		wantChanged bool
	}{
		{name: "answers at once when the version differs", since: "v0", timeout: time.Minute, wantVersion: "v1", wantChanged: true},
		{name: "answers at once for an empty since", since: "", timeout: time.Minute, wantVersion: "v1", wantChanged: true},
		{name: "304 when the timeout ends", since: "v1", timeout: 20 * time.Millisecond, wantVersion: "v1"},
		{name: "wakes on apply", since: "v1", timeout: time.Minute, pushAfter: true, wantVersion: "v2", wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
			type result struct {
				st      client.WatchState
				changed bool
				err     error
			}
			done := make(chan result, 1)
			go func() {
				st, changed, err := h.client.Watch(context.Background(), tt.since, tt.timeout)
				done <- result{st, changed, err}
			}()
			if tt.pushAfter {
				h.mustPut(t, bundle(t, "v2", "http://127.0.0.1:2"))
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.st.Version != tt.wantVersion || r.changed != tt.wantChanged {
				t.Fatalf("got %q changed=%v, want %q changed=%v", r.st.Version, r.changed, tt.wantVersion, tt.wantChanged)
			}
		})
	}
}

func TestLongPollBadTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	for _, q := range []string{"timeout=soon", "timeout=-1s"} {
		if a := get(t, h.sock, "/v1/watch?since=x&"+q, nil); a.code != http.StatusBadRequest {
			t.Errorf("%s: got %d, want 400", q, a.code)
		}
	}
}

func TestWatchOff(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.Watch = false })
	if a := get(t, h.sock, "/v1/watch", nil); a.code != http.StatusNotFound {
		t.Fatalf("watch without --watch: %d, want 404", a.code)
	}
}

// subscription follows a server's SSE stream in a goroutine it owns.
type subscription struct {
	events chan client.WatchEvent
	cancel context.CancelFunc
	done   chan error
}

func subscribe(t *testing.T, c *client.Client, last uint64) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{events: make(chan client.WatchEvent, 64), cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- c.Subscribe(ctx, last, func(ev client.WatchEvent) error {
			select {
			case s.events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *subscription) stop() {
	s.cancel()
	<-s.done
	s.done <- context.Canceled // let stop be called again
}

func (s *subscription) next(t *testing.T) client.WatchEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.done:
		s.done <- err
		t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return client.WatchEvent{}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))

	sub := subscribe(t, h.client, 0)
	reset := sub.next(t)
	if reset.Type != client.EventReset || reset.State.Version != "v1" || reset.ID == 0 {
		t.Fatalf("first event %+v, want reset at v1", reset)
	}
	h.mustPut(t, bundle(t, "v2", "http://127.0.0.1:2"))
	if _, err := h.put(t, bundle(t, "bad", "http://127.0.0.1:3", "nope"), ""); err == nil {
		t.Fatal("bad bundle accepted")
	}
	h.mustPut(t, bundle(t, "v3", "http://127.0.0.1:3"))
	want := []struct{ typ, version, rejected string }{
		{client.EventApplied, "v2", ""},
		{client.EventRejected, "v2", "bad"},
		{client.EventApplied, "v3", "bad"},
	}
	var got []client.WatchEvent
	prev := reset.ID
	for _, w := range want {
		ev := sub.next(t)
		got = append(got, ev)
		if ev.ID <= prev {
			t.Fatalf("event id %d after %d: ids must grow", ev.ID, prev)
		}
		prev = ev.ID
		rej := ""
		if ev.State.LastRejected != nil {
			rej = ev.State.LastRejected.Version
		}
		if ev.Type != w.typ || ev.State.Version != w.version || rej != w.rejected {
			t.Fatalf("event %+v, want %s at %s (rejected %q)", ev, w.typ, w.version, w.rejected)
		}
	}
	sub.stop()

	t.Run("resume after a known id", func(t *testing.T) {
		sub := subscribe(t, h.client, got[0].ID)
		for _, w := range got[1:] {
			ev := sub.next(t)
			if ev.ID != w.ID || ev.Type != w.Type {
				t.Fatalf("resumed event %d %s, want %d %s", ev.ID, ev.Type, w.ID, w.Type)
			}
		}
	})
	t.Run("resume at the newest id sends nothing missed", func(t *testing.T) {
		sub := subscribe(t, h.client, got[2].ID)
		h.mustPut(t, bundle(t, "v4", "http://127.0.0.1:4"))
		ev := sub.next(t)
		if ev.Type != client.EventApplied || ev.State.Version != "v4" || ev.ID != got[2].ID+1 {
			t.Fatalf("event %+v, want applied v4 with id %d", ev, got[2].ID+1)
		}
	})
	t.Run("id from the future gets a reset", func(t *testing.T) {
		sub := subscribe(t, h.client, prev+1000)
		if ev := sub.next(t); ev.Type != client.EventReset || ev.State.Version != "v4" {
			t.Fatalf("event %+v, want reset at v4", ev)
		}
	})
}

func TestSSEResetWhenIDTooOld(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.EventBuffer = 2 })
	first := h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	_ = first
	sub := subscribe(t, h.client, 0)
	start := sub.next(t).ID
	for i, v := range []string{"v2", "v3", "v4"} {
		h.mustPut(t, bundle(t, v, "http://127.0.0.1:"+string(rune('2'+i))))
		sub.next(t)
	}
	sub.stop()
	// The buffer holds v3 and v4 (ids start+2, start+3): start+1 is still
	// resumable (nothing before v3 is missed), start is not.
	tests := []struct {
		name      string
		last      uint64
		wantFirst string
		wantID    uint64
	}{
		{name: "too old", last: start, wantFirst: client.EventReset, wantID: start + 3},
		{name: "oldest resumable", last: start + 1, wantFirst: client.EventApplied, wantID: start + 2},
		{name: "before this process", last: 1, wantFirst: client.EventReset, wantID: start + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscribe(t, h.client, tt.last)
			ev := sub.next(t)
			if ev.Type != tt.wantFirst || ev.ID != tt.wantID {
				t.Fatalf("first event %s id %d, want %s id %d", ev.Type, ev.ID, tt.wantFirst, tt.wantID)
			}
			if ev.Type == client.EventReset && ev.State.Version != "v4" {
				t.Fatalf("reset carries %q, want v4", ev.State.Version)
			}
		})
	}
}

func TestSSEHeartbeat(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.Heartbeat = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Transport: unixTransport(h.sock)}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin/v1/watch", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	for beats < 3 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), ": heartbeat") {
			beats++
		}
	}
	if beats < 3 {
		t.Fatalf("saw %d heartbeats before the stream ended: %v", beats, sc.Err())
	}
}

// A watch outlives the server's ReadTimeout: the handler lifts the read
// deadline, which would otherwise cancel the request context.
func TestSSEOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.ReadTimeout = 50 * time.Millisecond })
	sub := subscribe(t, h.client, 0)
	sub.next(t)
	time.Sleep(200 * time.Millisecond) // four read timeouts
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	if ev := sub.next(t); ev.Type != client.EventApplied {
		t.Fatalf("event %+v, want applied", ev)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	sub := subscribe(t, h.client, 0)
	sub.next(t)
	poll := make(chan error, 1)
	go func() {
		_, _, err := h.client.Watch(context.Background(), "", time.Minute)
		poll <- err
	}()
	waitFor(t, func() bool { return h.streams(t) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with open watches: %v", err)
	}
	if err := <-sub.done; err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v, want a broken stream error", err)
	}
	sub.done <- nil
	var se *client.StatusError
	if err := <-poll; !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("long-poll during shutdown: %v, want 503", err)
	}
}

// Not parallel: it counts the process's goroutines.
func TestWatchNoGoroutineLeak(t *testing.T) {
	h := start(t, nil)
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	settle(t)
	base := goruntime.NumGoroutine()

	const n = 20
	subs := make([]*subscription, n)
	polls := make([]context.CancelFunc, n)
	pollDone := make(chan struct{}, n)
	for i := range n {
		subs[i] = subscribe(t, h.client, 0)
		ctx, cancel := context.WithCancel(context.Background())
		polls[i] = cancel
		go func() {
			_, _, _ = h.client.Watch(ctx, "v1", time.Minute)
			pollDone <- struct{}{}
		}()
	}
	for _, s := range subs {
		s.next(t)
	}
	waitFor(t, func() bool { return h.streams(t) == 2*n })
	h.mustPut(t, bundle(t, "v2", "http://127.0.0.1:2"))
	for i := range n {
		subs[i].next(t)
		<-pollDone // the version changed: every poll answered
		polls[i]()
	}
	for _, s := range subs {
		s.stop()
	}
	h.client.Close()
	waitFor(t, func() bool { return h.streams(t) == 0 })
	waitFor(t, func() bool { return goruntime.NumGoroutine() <= base })
}

// streams reads the gitgate_admin_watch_streams gauge from the registry.
func (h *harness) streams(t *testing.T) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gitgate_admin_watch_streams" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("gitgate_admin_watch_streams not registered")
	return 0
}

func settle(t *testing.T) {
	t.Helper()
	prev := -1
	waitFor(t, func() bool {
		n := goruntime.NumGoroutine()
		same := n == prev
		prev = n
		return same
	})
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:goruntime.Stack(buf, true)]
			t.Fatalf("condition not met within 10s; goroutines:\n%s", buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchersAreCapped(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) { o.MaxWatchers = 2 })
	for range 2 {
		sub := subscribe(t, h.client, 0)
		sub.next(t)
	}
	_, _, err := h.client.Watch(context.Background(), "", time.Second)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("third watcher: %v, want 503", err)
	}
}
