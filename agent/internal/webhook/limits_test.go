package webhook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const bogusSignature = "sha256=0000000000000000000000000000000000000000000000000000000000000000"

// zeros is an endless reader of zero bytes: a large body that the client
// never holds in memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// gaugeValue reads a gauge from reg; ok is false when it is not there.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// rawDelivery opens a connection and sends a push delivery's head with
// Content-Length n and the first part of its body, and keeps it open.
func rawDelivery(t *testing.T, addr string, n int, sig, part string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: agent\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: raw\r\n"+
		"X-Hub-Signature-256: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", sig, n, part)
	return c
}

// statusOf reads the status line of the answer on c.
func statusOf(t *testing.T, c net.Conn) int {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestUnverifiedBodiesBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var n nudges
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: n.nudge, MaxBodyBytes: 1024, MaxUnverified: 2, Registerer: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// Cleanups run last in first out: the raw connections opened later
	// close before the server waits for them.
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	// Two senders that trickle their bodies hold both slots.
	const bodyLen = 500
	held := []net.Conn{
		rawDelivery(t, addr, bodyLen, bogusSignature, "{"),
		rawDelivery(t, addr, bodyLen, bogusSignature, "{"),
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ := gaugeValue(t, reg, "gitgate_agent_webhook_unverified_bodies")
		if v == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitgate_agent_webhook_unverified_bodies is %v, want 2 while two bodies are being read", v)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Every other delivery, bogus or valid, is turned away without its
	// body being read.
	for i := range 5 {
		body := `{"ref":"refs/heads/main"}`
		sign := func(string) (string, string) { return "X-Hub-Signature-256", bogusSignature }
		if i == 4 {
			sign = good
		}
		resp := post(t, srv.URL, "push", fmt.Sprintf("busy-%d", i), body, sign)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("delivery %d while full: %d (Retry-After %q), want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if n.count() != 0 {
		t.Fatalf("a delivery turned away nudged the loop")
	}

	// The held senders finish: refused for their signature, slots freed.
	for _, c := range held {
		if _, err := io.WriteString(c, strings.Repeat(" ", bodyLen-2)+"}"); err != nil {
			t.Fatal(err)
		}
		if code := statusOf(t, c); code != http.StatusUnauthorized {
			t.Fatalf("held bogus delivery: %d, want 401", code)
		}
	}
	resp := post(t, srv.URL, "push", "after", `{"ref":"refs/heads/main"}`, good)
	if resp.StatusCode != http.StatusAccepted || n.count() != 1 {
		t.Fatalf("valid delivery after the burst: %d, nudges %d; want 202, 1", resp.StatusCode, n.count())
	}
	if v, _ := gaugeValue(t, reg, "gitgate_agent_webhook_unverified_bodies"); v != 0 {
		t.Fatalf("unverified bodies gauge %v after all answers, want 0", v)
	}
}

func TestOversizeRefusedBeforeReading(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		max      int64 // Options.MaxBodyBytes; 0: the default
		declared int
	}{
		{name: "default cap, 24 MB declared", declared: 24 << 20},
		{name: "default cap, just over", declared: DefaultMaxBodyBytes + 1},
		{name: "configured cap", max: 4096, declared: 4097},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := New(Options{Secret: secret, Branch: "main", Nudge: func(string) {}, MaxBodyBytes: tc.max, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			// The body is never sent: the answer must come from the
			// declared length alone.
			c := rawDelivery(t, strings.TrimPrefix(srv.URL, "http://"), tc.declared, bogusSignature, "")
			if code := statusOf(t, c); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("declared %d bytes: %d, want 413", tc.declared, code)
			}
		})
	}
}

// TestUnverifiedMemoryBound sends 20 concurrent 24 MB deliveries with a
// bogus signature (chunked, so no length is declared) and checks that the
// heap stays far below what reading them would take. Not parallel: it
// measures the process's heap.
func TestUnverifiedMemoryBound(t *testing.T) {
	const (
		senders = 20
		size    = 24 << 20
		bound   = 48 << 20
	)
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: func(string) {}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
		errs  int
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodPost, srv.URL, io.LimitReader(zeros{}, size))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("big-%d", i))
			req.Header.Set("X-Hub-Signature-256", bogusSignature)
			resp, err := http.DefaultClient.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// The server may close while the client still writes.
				var ne net.Error
				if !errors.As(err, &ne) && !strings.Contains(err.Error(), "connection reset") && !strings.Contains(err.Error(), "broken pipe") {
					t.Errorf("delivery %d: %v", i, err)
				}
				errs++
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	for code := range codes {
		if code != http.StatusRequestEntityTooLarge && code != http.StatusServiceUnavailable {
			t.Errorf("answers %v (and %d cut connections): want only 413 and 503", codes, errs)
		}
	}
	growth := int64(peak) - int64(base)
	t.Logf("%d × %d MiB bogus deliveries: heap in use grew by %.1f MiB at peak; answers %v, %d cut connections", senders, size>>20, float64(growth)/(1<<20), codes, errs)
	if growth > bound {
		t.Fatalf("heap in use grew by %d MiB, want under %d MiB", growth>>20, bound>>20)
	}
}

// TestUnverifiedBoundSharedAcrossHosts: the slots for bodies read before
// their signature is checked are one pool for every host's route, so
// trickling senders on GitLab's route turn away deliveries on the others.
func TestUnverifiedBoundSharedAcrossHosts(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: func(string) {}, MaxUnverified: 1, Registerer: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /webhooks/gitlab HTTP/1.1\r\nHost: agent\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: guess\r\nContent-Length: 100\r\n\r\n{")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := gaugeValue(t, reg, "gitgate_agent_webhook_unverified_bodies"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the trickling GitLab delivery never took its slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, path := range []string{"/webhooks/github", "/webhooks/gitea", "/webhooks/bitbucket", "/webhooks/gitlab"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s while the slot is held: %d, want 503", path, resp.StatusCode)
		}
	}
	if _, err := io.WriteString(c, strings.Repeat(" ", 98)+"}"); err != nil {
		t.Fatal(err)
	}
	if code := statusOf(t, c); code != http.StatusUnauthorized {
		t.Fatalf("held GitLab delivery with a wrong token: %d, want 401", code)
	}
}
