package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gitgate/gitgate/gateway/internal/upstream/dnstest"
	"github.com/gitgate/gitgate/schemas"
)

// port returns the port of a host:port address.
func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// discoveredPool starts a pool of target resolved by the test's DNS server.
func discoveredPool(t *testing.T, s *dnstest.Server, target string, edit func(*schemas.Upstream)) *Pool {
	t.Helper()
	r, err := NewResolver(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	u := schemas.Upstream{Targets: []string{target}, Discovery: &schemas.Discovery{
		MinInterval: schemas.Duration(5 * time.Millisecond), MaxInterval: schemas.Duration(time.Hour)}}
	if edit != nil {
		edit(&u)
	}
	p, err := NewPool("u", defaulted(u), Options{Resolver: r})
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(p.Close)
	p.Start()
	<-p.Resolved()
	return p
}

func memberURLs(p *Pool) []string {
	var out []string
	for _, tg := range p.Targets() {
		out = append(out, tg.String())
	}
	slices.Sort(out)
	return out
}

// resolutions returns the pool's count of resolutions with result.
func resolutions(p *Pool, result string) uint64 { return p.Discovery().Resolutions[result] }

// waitResolutions waits until the pool has made n more resolutions with
// result than before.
func waitResolutions(t *testing.T, p *Pool, result string, before uint64, n uint64) {
	t.Helper()
	eventually(t, func() bool { return resolutions(p, result) >= before+n })
}

func TestDiscoveryMembersFollowRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		// records sets the server's answer to the members of step i.
		records func(s *dnstest.Server, step int)
		steps   [][]string // the members after each step
	}{
		{"dns A and AAAA", "dns://api.test:8080", func(s *dnstest.Server, step int) {
			switch step {
			case 0:
				s.SetHosts("api.test", "127.0.0.2", "127.0.0.3")
			case 1: // one member appears
				s.SetHosts("api.test", "127.0.0.2", "127.0.0.3", "::1")
			case 2: // one vanishes
				s.SetHosts("api.test", "127.0.0.3", "::1")
			}
		}, [][]string{
			{"http://127.0.0.2:8080", "http://127.0.0.3:8080"},
			{"http://127.0.0.2:8080", "http://127.0.0.3:8080", "http://[::1]:8080"},
			{"http://127.0.0.3:8080", "http://[::1]:8080"},
		}},
		{"srv lowest priority, ports from the records", "srv://_http._tcp.api.test", func(s *dnstest.Server, step int) {
			s.SetHosts("a.api.test", "127.0.0.2")
			s.SetHosts("b.api.test", "127.0.0.3", "127.0.0.4")
			s.SetHosts("standby.api.test", "127.0.0.9")
			switch step {
			case 0:
				s.SetSRV("_http._tcp.api.test", dnstest.SRV(10, 5, 81, "a.api.test"), dnstest.SRV(20, 5, 99, "standby.api.test"))
			case 1:
				s.SetSRV("_http._tcp.api.test", dnstest.SRV(10, 5, 81, "a.api.test"), dnstest.SRV(10, 1, 82, "b.api.test"), dnstest.SRV(20, 5, 99, "standby.api.test"))
			case 2: // the priority-10 targets have no address: the standby serves
				s.SetHosts("a.api.test")
				s.SetHosts("b.api.test")
			}
		}, [][]string{
			{"http://127.0.0.2:81"},
			{"http://127.0.0.2:81", "http://127.0.0.3:82", "http://127.0.0.4:82"},
			{"http://127.0.0.9:99"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.New(t)
			tc.records(s, 0)
			p := discoveredPool(t, s, tc.target, nil)
			for step, want := range tc.steps {
				if step > 0 {
					before := resolutions(p, ResultOK)
					tc.records(s, step)
					// Two more resolutions: the second one surely began
					// after the change.
					waitResolutions(t, p, ResultOK, before, 2)
				}
				if got := memberURLs(p); !slices.Equal(got, want) {
					t.Fatalf("step %d: members %v, want %v", step, got, want)
				}
			}
		})
	}
}

// TestDiscoveryTruncatedAnswerRetriedOverTCP shows a truncated UDP
// answer asked again over TCP.
func TestDiscoveryTruncatedAnswerRetriedOverTCP(t *testing.T) {
	t.Parallel()
	s := dnstest.New(t)
	s.SetTruncate(true)
	s.SetHosts("api.test", "127.0.0.2", "127.0.0.3")
	p := discoveredPool(t, s, "dns://api.test:80", nil)
	waitResolutions(t, p, ResultOK, 0, 1)
	if got, want := memberURLs(p), []string{"http://127.0.0.2:80", "http://127.0.0.3:80"}; !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if s.TCPQueries.Load() == 0 {
		t.Fatal("no query over TCP")
	}
}

func TestDiscoveryNextResolutionHonoursTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ttl      uint32
		min, max time.Duration
		want     time.Duration
	}{
		{"ttl within bounds", 30, time.Second, 5 * time.Minute, 30 * time.Second},
		{"ttl below minInterval", 0, 2 * time.Second, 5 * time.Minute, 2 * time.Second},
		{"ttl above maxInterval", 86400, time.Second, time.Minute, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.New(t)
			s.SetTTL(tc.ttl)
			s.SetHosts("api.test", "127.0.0.2")
			p := discoveredPool(t, s, "dns://api.test:80", func(u *schemas.Upstream) {
				u.Discovery = &schemas.Discovery{MinInterval: schemas.Duration(tc.min), MaxInterval: schemas.Duration(tc.max)}
			})
			waitResolutions(t, p, ResultOK, 0, 1)
			st := p.Discovery()
			if got := st.NextResolution.Sub(st.LastSuccess); got != tc.want {
				t.Fatalf("next resolution %s after the last, want %s", got, tc.want)
			}
		})
	}
}

func TestDiscoveryKeepsLastGoodSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		breakDNS func(s *dnstest.Server)
		repair   func(s *dnstest.Server)
		result   string
		errPart  string
	}{
		{"server dies and comes back", (*dnstest.Server).Stop, (*dnstest.Server).Start, ResultFailed, "asking"},
		{"server fails", func(s *dnstest.Server) { s.SetFail(true) }, func(s *dnstest.Server) { s.SetFail(false) }, ResultFailed, "SERVFAIL"},
		{"empty answer", func(s *dnstest.Server) { s.SetEmpty(true) }, func(s *dnstest.Server) { s.SetEmpty(false) }, ResultEmpty, "no address"},
		{"name removed", func(s *dnstest.Server) { s.Remove("api.test") },
			func(s *dnstest.Server) { s.SetHosts("api.test", "127.0.0.2", "127.0.0.3") }, ResultEmpty, "no address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.New(t)
			s.SetHosts("api.test", "127.0.0.2", "127.0.0.3")
			p := discoveredPool(t, s, "dns://api.test:80", func(u *schemas.Upstream) {
				u.Discovery.MaxInterval = schemas.Duration(20 * time.Millisecond)
			})
			waitResolutions(t, p, ResultOK, 0, 1)
			good := memberURLs(p)
			before := resolutions(p, tc.result)
			tc.breakDNS(s)
			waitResolutions(t, p, tc.result, before, 2)
			st := p.Discovery()
			if st.State != tc.result || !strings.Contains(st.LastError, tc.errPart) || st.LastSuccess.IsZero() {
				t.Fatalf("status %+v: want state %s, an error with %q and the last success", st, tc.result, tc.errPart)
			}
			if got := memberURLs(p); !slices.Equal(got, good) || st.Members != len(good) {
				t.Fatalf("members %v (status %d) after a bad resolution, want the last good %v", got, st.Members, good)
			}
			n := 0
			for _, tg := range p.targets {
				if tg.available(p.now) {
					n++
				}
			}
			if n != len(good) {
				t.Fatalf("%d targets available, want %d", n, len(good))
			}
			okBefore := resolutions(p, ResultOK)
			tc.repair(s)
			waitResolutions(t, p, ResultOK, okBefore, 1)
			if st := p.Discovery(); st.State != ResultOK {
				t.Fatalf("state %s after recovery, want ok", st.State)
			}
		})
	}
}

// countingBackend serves on addr and counts connections closed.
type countingBackend struct {
	srv    *http.Server
	closed atomic.Int64
	opened atomic.Int64
}

func newCountingBackend(t *testing.T, ln net.Listener) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				b.opened.Add(1)
			case http.StateClosed, http.StateHijacked:
				b.closed.Add(1)
			}
		},
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// twoLoopbackListeners listens on 127.0.0.2 and 127.0.0.3 on one port.
func twoLoopbackListeners(t *testing.T) (net.Listener, net.Listener, int) {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("127.0.0.2 is not a loopback address here: %v", err)
		}
		pt := port(t, a.Addr().String())
		b, err := net.Listen("tcp", "127.0.0.3:"+strconv.Itoa(pt))
		if err != nil {
			_ = a.Close()
			continue
		}
		return a, b, pt
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	return nil, nil, 0
}

func TestDiscoveryDrainsLeavingMember(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"fast path", "http.Transport"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			la, lb, pt := twoLoopbackListeners(t)
			backA, backB := newCountingBackend(t, la), newCountingBackend(t, lb)
			s := dnstest.New(t)
			s.SetHosts("api.test", "127.0.0.2", "127.0.0.3")
			p := discoveredPool(t, s, "dns://api.test:"+strconv.Itoa(pt), func(u *schemas.Upstream) {
				u.OutlierDetection = &schemas.OutlierDetection{ConsecutiveFailures: 3}
				if scheme == "http.Transport" {
					u.MaxConnsPerTarget = 8 // takes the slow path
				}
			})
			byHost := map[string]*Target{}
			for _, tg := range p.Targets() {
				byHost[tg.URL.Hostname()] = tg
			}
			stay, leave := byHost["127.0.0.2"], byHost["127.0.0.3"]
			if stay == nil || leave == nil {
				t.Fatalf("members %v", memberURLs(p))
			}
			// A kept-alive connection to each member, and state on the
			// member that stays.
			for _, tg := range []*Target{stay, leave} {
				resp, err := p.Transport().RoundTrip(mustRequest(t, tg.URL.String()+"/"))
				if err != nil {
					t.Fatal(err)
				}
				drain(resp)
			}
			p.Done(stay, Failure)
			// A request in flight on the member that leaves.
			leave.inFlight.Add(1)

			before := resolutions(p, ResultOK)
			s.SetHosts("api.test", "127.0.0.2")
			waitResolutions(t, p, ResultOK, before, 2)
			if got := p.Targets(); len(got) != 1 || got[0] != stay {
				t.Fatalf("members %v, want the same Target for 127.0.0.2 alone", memberURLs(p))
			}
			if stay.fails.Load() != 1 {
				t.Fatalf("outlier state of the member that stays was lost: fails %d", stay.fails.Load())
			}
			if st := p.Discovery(); st.Draining != 1 {
				t.Fatalf("draining %d, want 1", st.Draining)
			}
			for i := range 50 {
				tg, err := p.Pick(uint64(i), nil)
				if err != nil {
					t.Fatal(err)
				}
				p.Done(tg, Success)
				if tg == leave {
					t.Fatal("a draining member was picked")
				}
			}
			if tg, _ := p.Pick(0, stay); tg != stay {
				t.Fatalf("with the only other target draining, Pick(avoid) gave %v", tg)
			} else {
				p.Done(tg, Success)
			}
			// A retry that avoids the draining member when nothing else
			// is available never falls back to it.
			stay.healthy.Store(false)
			if tg, err := p.Pick(0, leave); !errors.Is(err, ErrNoHealthyTarget) {
				t.Fatalf("Pick(avoid draining) with no other target = %v, %v; want ErrNoHealthyTarget", tg, err)
			}
			stay.healthy.Store(true)
			if backB.closed.Load() != 0 {
				t.Fatal("the leaving member's connection was closed while a request was in flight")
			}
			// The request in flight ends: the member is closed.
			p.Done(leave, Success)
			eventually(t, func() bool { return p.Discovery().Draining == 0 })
			eventually(t, func() bool { return backB.closed.Load() == backB.opened.Load() })
			if backA.closed.Load() != 0 {
				t.Fatalf("%d connections of the member that stays were closed", backA.closed.Load())
			}
		})
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func drain(resp *http.Response) {
	buf := make([]byte, 512)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	_ = resp.Body.Close()
}

// TestDiscoveryHealthChecksFollowMembers shows a new member probed and a
// removed one no longer probed.
func TestDiscoveryHealthChecksFollowMembers(t *testing.T) {
	t.Parallel()
	la, lb, pt := twoLoopbackListeners(t)
	var probesA, probesB atomic.Int64
	serve := func(ln net.Listener, n *atomic.Int64) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) })}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	serve(la, &probesA)
	serve(lb, &probesB)
	s := dnstest.New(t)
	s.SetHosts("api.test", "127.0.0.2")
	p := discoveredPool(t, s, "dns://api.test:"+strconv.Itoa(pt), func(u *schemas.Upstream) {
		u.HealthCheck = &schemas.HealthCheck{Interval: schemas.Duration(5 * time.Millisecond)}
	})
	eventually(t, func() bool { return probesA.Load() > 0 })
	if probesB.Load() != 0 {
		t.Fatal("a host that is no member was probed")
	}
	before := resolutions(p, ResultOK)
	s.SetHosts("api.test", "127.0.0.3")
	waitResolutions(t, p, ResultOK, before, 2)
	eventually(t, func() bool { return probesB.Load() > 0 })
	// After the change, probes of the old member stop: two rounds of
	// probes of the new one pass without any to the old one.
	eventually(t, func() bool { return p.Discovery().Draining == 0 })
	a := probesA.Load()
	b := probesB.Load()
	eventually(t, func() bool { return probesB.Load() >= b+2 })
	if probesA.Load() > a+1 { // one probe may have been under way
		t.Fatalf("the removed member was probed %d more times", probesA.Load()-a)
	}
}

// TestDiscoveryCloseStopsResolving shows that Close waits for the
// resolution goroutine, even while a query is unanswered.
func TestDiscoveryCloseStopsResolving(t *testing.T) {
	// Not parallel: it reads every goroutine's stack.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r, err := NewResolver(silent.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dns://api.test:80", "srv://_http._tcp.api.test"} {
		p, err := NewPool("u", defaulted(schemas.Upstream{Targets: []string{name}}), Options{Resolver: r})
		if err != nil {
			t.Fatal(err)
		}
		p.Start()
		p.Close() // with a query unanswered
		// Close has waited for the goroutine's deferred Done; it may still
		// be returning, so look until it is gone (a leak fails after 10s).
		eventually(t, func() bool {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			return !strings.Contains(stacks, "discoverLoop") && !strings.Contains(stacks, "(*Resolver).")
		})
	}
}

// TestDiscoveryHTTPSMembersVerifyTheName shows that https members found by
// DNS are verified against the name they were found by (their addresses
// are what the URL holds), unless tls.serverName names another.
func TestDiscoveryHTTPSMembersVerifyTheName(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	tests := []struct {
		name       string
		certFor    string
		serverName string
		wantErr    string // "": the request passes
	}{
		{"certificate for the dns name", "api.test", "", ""},
		{"certificate for another name", "other.test", "", "x509"},
		{"tls.serverName wins", "other.test", "other.test", ""},
	}
	// The CA is not safe for concurrent use: everything it makes is made
	// before the subtests run.
	caPath := ca.pemPath
	certs := map[string]tls.Certificate{}
	for _, tc := range tests {
		if _, ok := certs[tc.certFor]; !ok {
			certs[tc.certFor], _, _ = ca.issue(t, tc.certFor, x509.ExtKeyUsageServerAuth, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), tc.certFor)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sni atomic.Value
			back := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{certs[tc.certFor]}}, &sni)
			s := dnstest.New(t)
			s.SetHosts("api.test", "127.0.0.1")
			p := discoveredPool(t, s, "dns://api.test:"+strconv.Itoa(port(t, back.Listener.Addr().String())), func(u *schemas.Upstream) {
				u.TLS = &schemas.UpstreamTLS{CARef: file(caPath), ServerName: tc.serverName}
			})
			members := p.Targets()
			if len(members) != 1 || members[0].URL.Scheme != "https" {
				t.Fatalf("members %v, want one https member", memberURLs(p))
			}
			resp, err := p.Transport().RoundTrip(mustRequest(t, members[0].URL.String()+"/"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			drain(resp)
			want := tc.serverName
			if want == "" {
				want = "api.test"
			}
			if got, _ := sni.Load().(string); got != want {
				t.Fatalf("SNI %q, want %q", got, want)
			}
		})
	}
}

// TestDiscoveryPickDuringChurn picks and hands back targets from several
// goroutines while the members change with every resolution (run with
// -race): a pick is always a member of the set of some moment, never nil
// while the pool has members.
func TestDiscoveryPickDuringChurn(t *testing.T) {
	t.Parallel()
	s := dnstest.New(t)
	s.SetHosts("api.test", "127.0.0.2", "127.0.0.3")
	p := discoveredPool(t, s, "dns://api.test:80", func(u *schemas.Upstream) {
		u.Balance = schemas.BalanceLeastRequests
	})
	stop := make(chan struct{})
	var picks atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			var avoid *Target
			for n := uint64(i); ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				tg, err := p.Pick(n, avoid)
				if err != nil {
					var st []string
					for _, m := range p.Targets() {
						st = append(st, fmt.Sprintf("%s h=%v d=%v e=%d", m, m.healthy.Load(), m.draining.Load(), m.ejectedUntil.Load()))
					}
					t.Errorf("Pick: %v (members %v, avoid %v)", err, st, avoid)
					return
				}
				if h := tg.URL.Hostname(); h != "127.0.0.2" && h != "127.0.0.3" && h != "127.0.0.4" {
					t.Errorf("picked %s, never a member", tg)
				}
				picks.Add(1)
				p.Done(tg, Success)
				avoid = tg
				runtime.Gosched()
			}
		})
	}
	sets := [][]string{{"127.0.0.2", "127.0.0.3"}, {"127.0.0.3", "127.0.0.4"}, {"127.0.0.4", "127.0.0.2"}}
	for i := range 12 {
		before := resolutions(p, ResultOK)
		s.SetHosts("api.test", sets[i%len(sets)]...)
		waitResolutions(t, p, ResultOK, before, 1)
		for _, tg := range p.targets {
			_ = tg.available(p.now)
		}
		_ = p.Status()
	}
	close(stop)
	wg.Wait()
	if picks.Load() == 0 {
		t.Fatal("no pick made")
	}
}

// TestDiscoverySRVWeights shows the SRV weights of one priority honoured
// by every balancer, and a weight-0 member used only when no weighted one
// is available.
func TestDiscoverySRVWeights(t *testing.T) {
	t.Parallel()
	tests := []struct {
		balance string
		lo, hi  float64 // bounds of the heavy member's share (3 of 4)
	}{
		{schemas.BalanceRoundRobin, 0.75, 0.75},
		{schemas.BalanceRandom, 0.70, 0.80},
		{schemas.BalanceHash, 0.70, 0.80},
		{schemas.BalanceLeastRequests, 0.65, 0.85},
	}
	for _, tc := range tests {
		t.Run(tc.balance, func(t *testing.T) {
			t.Parallel()
			s := dnstest.New(t)
			s.SetHosts("heavy.api.test", "127.0.0.2")
			s.SetHosts("light.api.test", "127.0.0.3")
			s.SetHosts("spare.api.test", "127.0.0.4")
			s.SetSRV("_http._tcp.api.test", dnstest.SRV(10, 30, 80, "heavy.api.test"), dnstest.SRV(10, 10, 80, "light.api.test"),
				dnstest.SRV(10, 0, 80, "spare.api.test"))
			p := discoveredPool(t, s, "srv://_http._tcp.api.test", func(u *schemas.Upstream) { u.Balance = tc.balance })
			if len(p.Targets()) != 3 {
				t.Fatalf("members %v", memberURLs(p))
			}
			counts := map[string]int{}
			const n = 4000
			for i := range n {
				tg, err := p.Pick(mix(uint64(i)), nil)
				if err != nil {
					t.Fatal(err)
				}
				counts[tg.URL.Hostname()]++
				p.Done(tg, Success)
			}
			if share := float64(counts["127.0.0.2"]) / n; share < tc.lo || share > tc.hi || counts["127.0.0.4"] != 0 {
				t.Fatalf("picks %v: the weight-30 member's share %.3f, want within [%.2f, %.2f], and none for weight 0", counts, share, tc.lo, tc.hi)
			}
			for _, tg := range p.Targets() {
				if tg.URL.Hostname() != "127.0.0.4" {
					tg.healthy.Store(false)
				}
			}
			if tg, err := p.Pick(1, nil); err != nil || tg.URL.Hostname() != "127.0.0.4" {
				t.Fatalf("with the weighted members down: %v, %v; want the weight-0 member", tg, err)
			}
		})
	}
}

// TestDiscoveryBoundsHostileAnswers: a DNS answer with a thousand
// addresses gives at most MaxDiscoveredMembers members (the same sorted
// first ones on every replica), and one with hundreds of SRV records
// resolves the targets of at most maxSRVRecords of them.
func TestDiscoveryBoundsHostileAnswers(t *testing.T) {
	t.Parallel()
	t.Run("a thousand addresses", func(t *testing.T) {
		t.Parallel()
		s := dnstest.New(t)
		s.SetTruncate(true) // the answer needs TCP
		var ips []string
		for i := range 1000 {
			ips = append(ips, fmt.Sprintf("127.1.%d.%d", i/250, i%250+1))
		}
		s.SetHosts("many.test", ips...)
		p := discoveredPool(t, s, "dns://many.test:80", nil)
		waitResolutions(t, p, ResultOK, 0, 1)
		got := memberURLs(p)
		if len(got) != MaxDiscoveredMembers {
			t.Fatalf("%d members, want %d", len(got), MaxDiscoveredMembers)
		}
		// The lowest addresses: 127.1.0.1-250, then 127.1.1.1-6.
		if !slices.Contains(got, "http://127.1.1.6:80") || slices.Contains(got, "http://127.1.1.7:80") {
			t.Fatalf("members are not the lowest addresses: %v", got)
		}
	})
	t.Run("hundreds of SRV records", func(t *testing.T) {
		t.Parallel()
		s := dnstest.New(t)
		s.SetTruncate(true)
		var recs []*dns.SRV
		for i := range 300 {
			name := fmt.Sprintf("t%d.srv.test", i)
			s.SetHosts(name, fmt.Sprintf("127.2.%d.%d", i/250, i%250+1))
			recs = append(recs, dnstest.SRV(10, 1, 80, name))
		}
		s.SetSRV("_http._tcp.srv.test", recs...)
		p := discoveredPool(t, s, "srv://_http._tcp.srv.test", nil)
		waitResolutions(t, p, ResultOK, 0, 1)
		if got := len(memberURLs(p)); got != maxSRVRecords {
			t.Fatalf("%d members, want %d", got, maxSRVRecords)
		}
		// One SRV query and an A and an AAAA query per resolved target,
		// over UDP (truncated) and again over TCP, per resolution.
		per := uint64(2 * (1 + 2*maxSRVRecords))
		if q, n := uint64(s.Queries.Load()), resolutions(p, ResultOK)+resolutions(p, ResultFailed)+resolutions(p, ResultEmpty); q > per*n+per {
			t.Fatalf("%d queries for %d resolutions, want at most %d each", q, n, per)
		}
	})
}
