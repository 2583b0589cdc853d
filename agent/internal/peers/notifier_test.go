package peers

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// hostOf returns the host:port of a test server.
func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// deadPeer is a listener that accepts connections and never answers, as
// a hung pod does. Its connections close when the test ends or kill is called.
func deadPeer(t *testing.T) (addr string, kill func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var killOnce sync.Once
	kill = func() {
		killOnce.Do(func() {
			ln.Close()
			<-done
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(kill)
	return ln.Addr().String(), kill
}

func newNotifier(t *testing.T, spec string, opts NotifierOptions) *Notifier {
	t.Helper()
	set, err := NewSet(spec, SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Peers, opts.Secret, opts.Logger = set, testSecret, zerolog.Nop()
	n, err := NewNotifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestNotifierNudgesEveryPeer fans one nudge out to three real receivers:
// each triggers one sync.
func TestNotifierNudgesEveryPeer(t *testing.T) {
	t.Parallel()
	var addrs []string
	var counts []*atomic.Int32
	for range 3 {
		srv, n := receiverServer(t, ReceiverOptions{})
		addrs = append(addrs, hostOf(srv))
		counts = append(counts, n)
	}
	n := newNotifier(t, strings.Join(addrs, ","), NotifierOptions{})
	for _, r := range n.Broadcast(context.Background(), "webhook") {
		if r.Err != nil || r.Code != http.StatusAccepted {
			t.Fatalf("peer %s: %d %v", r.Addr, r.Code, r.Err)
		}
	}
	for i, c := range counts {
		if c.Load() != 1 {
			t.Fatalf("peer %d triggered %d times, want 1", i, c.Load())
		}
	}
}

// TestNotifierNudgeRunsInTheBackground checks Nudge returns at once and
// its worker delivers the nudge.
func TestNotifierNudgeRunsInTheBackground(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	r, err := NewReceiver(ReceiverOptions{Secret: testSecret, Logger: zerolog.Nop(), Trigger: func(reason string) {
		select {
		case got <- reason:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	n := newNotifier(t, hostOf(srv), NotifierOptions{})
	n.Nudge("rollback")
	select {
	case reason := <-got:
		if reason != "nudge" {
			t.Fatalf("peer triggered with %q, want %q", reason, "nudge")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no nudge arrived")
	}
}

// TestNotifierDeadPeerDoesNotDelayOthers puts a hung peer first: the fast
// peer is nudged while the hung one still holds its connection, and the
// hung one ends as an error once the per-peer timeout passes.
func TestNotifierDeadPeerDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{name: "long timeout: fast peer first anyway", timeout: time.Minute},
		{name: "short timeout: dead peer ends in error", timeout: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{})
			var once sync.Once
			r, err := NewReceiver(ReceiverOptions{Secret: testSecret, Logger: zerolog.Nop(), Trigger: func(string) { once.Do(func() { close(arrived) }) }})
			if err != nil {
				t.Fatal(err)
			}
			fast := httptest.NewServer(r)
			t.Cleanup(fast.Close)
			dead, kill := deadPeer(t)
			n := newNotifier(t, dead+","+hostOf(fast), NotifierOptions{Timeout: tt.timeout, Concurrency: 2})
			results := make(chan []Result, 1)
			go func() { results <- n.Broadcast(context.Background(), "webhook") }()
			select {
			case <-arrived:
			case res := <-results:
				t.Fatalf("broadcast ended before the fast peer was nudged: %+v", res)
			case <-time.After(30 * time.Second):
				t.Fatal("the fast peer was never nudged while the dead one hung")
			}
			if tt.timeout > time.Second {
				kill() // do not wait a minute for the dead peer
			}
			res := <-results
			for _, r := range res {
				if dead := r.Addr != hostOf(fast); dead != (r.Err != nil) {
					t.Fatalf("peer %s: err %v", r.Addr, r.Err)
				}
			}
		})
	}
}

// TestNotifierBoundsConcurrency nudges ten peers that each hold their
// request until released, with room for three at a time: never more than
// three are inside a handler at once.
func TestNotifierBoundsConcurrency(t *testing.T) {
	t.Parallel()
	const peers, limit = 10, 3
	var inflight, peak atomic.Int32
	arrived := make(chan struct{}, peers)
	release := make(chan struct{})
	left := make(chan struct{}, peers)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inflight.Add(-1)
		w.WriteHeader(http.StatusAccepted)
		left <- struct{}{}
	})
	var addrs []string
	for range peers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		addrs = append(addrs, hostOf(srv))
	}
	n := newNotifier(t, strings.Join(addrs, ","), NotifierOptions{Concurrency: limit, Timeout: time.Minute})
	done := make(chan []Result, 1)
	go func() { done <- n.Broadcast(context.Background(), "webhook") }()
	// Let the first three in, then one more each time one leaves.
	for range limit {
		<-arrived
	}
	for i := range peers {
		release <- struct{}{}
		<-left
		if i < peers-limit {
			<-arrived
		}
	}
	for _, r := range <-done {
		if r.Err != nil {
			t.Fatalf("peer %s: %v", r.Addr, r.Err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d nudges in flight at once, want at most %d", p, limit)
	}
}

// TestNotifierFollowsDNS runs three receivers on one port at 127.0.0.1,
// .2 and .3, as the pods of a headless Service are: a dns: spec whose
// resolver returns the three nudges the two that are not this replica.
func TestNotifierFollowsDNS(t *testing.T) {
	t.Parallel()
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(first.Addr().String())
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	counts := map[string]*atomic.Int32{}
	for i, ip := range ips {
		ln := first
		if i > 0 {
			if ln, err = net.Listen("tcp", net.JoinHostPort(ip, port)); err != nil {
				t.Skipf("cannot listen on %s: %v", ip, err)
			}
		}
		var n atomic.Int32
		counts[ip] = &n
		r, err := NewReceiver(ReceiverOptions{Secret: testSecret, Logger: zerolog.Nop(), Trigger: func(string) { n.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: r}}
		srv.Start()
		t.Cleanup(srv.Close)
	}
	lookup := func(_ context.Context, host string) ([]string, error) {
		if host != "agents.test" {
			t.Errorf("resolved %q", host)
		}
		return ips, nil
	}
	set, err := NewSet("dns:agents.test:"+port, SetOptions{Lookup: lookup, SelfPort: port, SelfIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNotifier(NotifierOptions{Peers: set, Secret: testSecret, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	res := n.Broadcast(context.Background(), "webhook")
	if len(res) != 2 {
		t.Fatalf("nudged %+v, want the two other replicas", res)
	}
	for ip, want := range map[string]int32{"127.0.0.1": 1, "127.0.0.2": 0, "127.0.0.3": 1} {
		if got := counts[ip].Load(); got != want {
			t.Fatalf("replica %s nudged %d times, want %d", ip, got, want)
		}
	}
}
