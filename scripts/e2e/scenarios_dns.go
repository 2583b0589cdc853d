package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "dn-members-change-under-load",
		criterion: "an upstream dns://app.e2e.test:PORT resolved by a DNS server the driver runs (--dns-resolver) " +
			"serves from the addresses of its A records; under steady load from a retrying client, two members " +
			"added by DNS take traffic, a member removed by DNS drains and is then stopped, the DNS server dies " +
			"(status says failed, the last good members keep serving) and comes back with a changed record set " +
			"(status ok, the new member serves); the client sees 0 failed requests",
		run: dnsMembersUnderLoad,
	}, scenario{
		name: "dn-srv-standby",
		criterion: "an upstream srv://_http._tcp.app.e2e.test serves from the member of its priority-10 SRV record only " +
			"(the priority-20 one serves nothing); when the priority-10 target loses its address the priority-20 member " +
			"takes over and the old member drains and stops; a retrying client under load sees 0 failed requests",
		run: dnsSRVStandby,
	})
}

// e2eDNS is a DNS server on loopback (UDP and TCP, one port) answering A
// and SRV records that the scenario changes, with a TTL of 1s; it can die
// and come back on the same port.
type e2eDNS struct {
	addr string
	mu   sync.Mutex
	a    map[string][]net.IP
	srv  map[string][]*dns.SRV
	udp  *dns.Server
	tcp  *dns.Server
}

func startE2EDNS() (*e2eDNS, error) {
	d := &e2eDNS{a: map[string][]net.IP{}, srv: map[string][]*dns.SRV{}}
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dns server: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			_ = pc.Close()
			continue
		}
		d.addr = pc.LocalAddr().String()
		d.serve(pc, ln)
		return d, nil
	}
	return nil, errors.New("dns server: no port free for both UDP and TCP")
}

func (d *e2eDNS) serve(pc net.PacketConn, ln net.Listener) {
	h := dns.HandlerFunc(d.handle)
	d.udp, d.tcp = &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	up := make(chan struct{}, 2)
	d.udp.NotifyStartedFunc = func() { up <- struct{}{} }
	d.tcp.NotifyStartedFunc = func() { up <- struct{}{} }
	go func() { _ = d.udp.ActivateAndServe() }()
	go func() { _ = d.tcp.ActivateAndServe() }()
	<-up
	<-up
}

func (d *e2eDNS) stop() {
	d.mu.Lock()
	udp, tcp := d.udp, d.tcp
	d.udp, d.tcp = nil, nil
	d.mu.Unlock()
	if udp != nil {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	}
}

func (d *e2eDNS) start() error {
	pc, err := net.ListenPacket("udp", d.addr)
	if err != nil {
		return fmt.Errorf("dns server restart: %w", err)
	}
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("dns server restart: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.serve(pc, ln)
	return nil
}

// set sets the A records of name.
func (d *e2eDNS) set(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []net.IP
	for _, ip := range ips {
		out = append(out, net.ParseIP(ip))
	}
	d.a[dns.Fqdn(name)] = out
}

// setSRV sets the SRV records of name: one per target, priority prio[i].
func (d *e2eDNS) setSRV(name string, port int, targets []string, prio []uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*dns.SRV
	for i, t := range targets {
		out = append(out, &dns.SRV{Priority: prio[i], Weight: 1, Port: uint16(port), Target: dns.Fqdn(t)})
	}
	d.srv[dns.Fqdn(name)] = out
}

func (d *e2eDNS) handle(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(req.Question) == 1 {
		q := req.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 1}
		switch q.Qtype {
		case dns.TypeA:
			for _, ip := range d.a[q.Name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
			}
		case dns.TypeSRV:
			for _, r := range d.srv[q.Name] {
				c := *r
				c.Hdr = hdr
				m.Answer = append(m.Answer, &c)
			}
		}
	}
	_ = w.WriteMsg(m)
}

// dnsMember is one backend of the scenario: loopback address ip, the
// scenario's port, answering X-Member: ip.
type dnsMember struct {
	ip     string
	srv    *http.Server
	served atomic.Int64
	done   chan struct{}
}

func (m *dnsMember) close() {
	if m.srv != nil {
		_ = m.srv.Close()
		<-m.done
		m.srv = nil
	}
}

// startMembers listens on each of ips on one common port.
func startMembers(ips []string) ([]*dnsMember, int, error) {
	for range 20 {
		var lns []net.Listener
		port := 0
		ok := true
		for _, ip := range ips {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
			port = ln.Addr().(*net.TCPAddr).Port
		}
		if !ok {
			for _, ln := range lns {
				_ = ln.Close()
			}
			continue
		}
		ms := make([]*dnsMember, len(ips))
		for i, ip := range ips {
			m := &dnsMember{ip: ip, done: make(chan struct{})}
			m.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m.served.Add(1)
				w.Header().Set("X-Member", m.ip)
				_, _ = io.WriteString(w, "ok")
			})}
			go func(ln net.Listener) {
				defer close(m.done)
				_ = m.srv.Serve(ln)
			}(lns[i])
			ms[i] = m
		}
		return ms, port, nil
	}
	return nil, 0, errors.New("no port free on every member address")
}

func dnsConfigYAML(target string, label string) string {
	return fmt.Sprintf(`upstreams:
  app:
    targets: [%q]
    discovery: {minInterval: 100ms, maxInterval: 1s}
routes:
  main:
    match:
      path: /
      pathType: prefix
    backends:
      - upstream: app
        weight: 100
    retries: {attempts: 2}
    responseHeaders:
      set:
        X-Config: %q
`, target, label)
}

// dnsLoad sends GETs from workers until stop, each retried up to 3
// times (50ms apart) on an error or a 5xx, and counts what still failed.
type dnsLoad struct {
	url            string
	sent, failed   atomic.Int64
	firstTryFailed atomic.Int64
	lastErr        atomic.Value
	stopped        chan struct{}
	wg             sync.WaitGroup
	client         *http.Client
}

func startDNSLoad(url string, workers int) *dnsLoad {
	l := &dnsLoad{url: url, stopped: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stopped:
					return
				default:
				}
				l.one()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *dnsLoad) one() {
	l.sent.Add(1)
	for try := range 4 {
		resp, err := l.client.Get(l.url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		l.lastErr.Store(err.Error())
		if try == 0 {
			l.firstTryFailed.Add(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.failed.Add(1)
}

func (l *dnsLoad) stop() {
	close(l.stopped)
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

func dnsMembersUnderLoad(ctx context.Context, t *T) error {
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	members, port, err := startMembers(ips)
	if err != nil {
		return Skip("loopback addresses 127.0.0.2-5 unusable here: " + err.Error())
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.close()
		}
	})
	d, err := startE2EDNS()
	if err != nil {
		return err
	}
	t.Cleanup(d.stop)
	d.set("app.e2e.test", "127.0.0.2")

	st, err := dnsStack(ctx, t, d, dnsConfigYAML(fmt.Sprintf("dns://app.e2e.test:%d", port), "c1"))
	if err != nil {
		return err
	}
	discovery := func() (client.DiscoveryStatus, error) { return dnsStatus(ctx, st) }
	waitStatus := func(what string, cond func(client.DiscoveryStatus) bool) error {
		return waitDNSStatus(ctx, st, what, cond)
	}
	waitServedBy := func(m *dnsMember) error { return waitServedBy(ctx, m) }

	load := startDNSLoad("http://"+st.GatewayAddr+"/", 4)
	stopped := false
	defer func() {
		if !stopped {
			load.stop()
		}
	}()

	// Two members appear.
	d.set("app.e2e.test", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	if err := waitStatus("3 members", func(s client.DiscoveryStatus) bool { return s.Members == 3 }); err != nil {
		return err
	}
	for _, m := range members[1:3] {
		if err := waitServedBy(m); err != nil {
			return err
		}
	}
	t.Logf("members 127.0.0.3 and .4 added by DNS take traffic")

	// One leaves: it drains, then its server stops.
	d.set("app.e2e.test", "127.0.0.3", "127.0.0.4")
	if err := waitStatus("127.0.0.2 drained", func(s client.DiscoveryStatus) bool { return s.Members == 2 && s.Draining == 0 }); err != nil {
		return err
	}
	after := members[0].served.Load()
	if err := waitServedBy(members[1]); err != nil {
		return err
	}
	if n := members[0].served.Load(); n != after {
		return fmt.Errorf("127.0.0.2 served %d requests after it was drained", n-after)
	}
	members[0].close()
	t.Logf("127.0.0.2 removed by DNS drained (%d requests served in all), took no more, and was stopped", after)

	// The DNS server dies: the last good members keep serving.
	d.stop()
	if err := waitStatus("the resolution to fail", func(s client.DiscoveryStatus) bool {
		return s.State == "failed" && s.LastError != "" && s.Members == 2
	}); err != nil {
		return err
	}
	if err := waitServedBy(members[2]); err != nil {
		return err
	}
	s, _ := discovery()
	t.Logf("DNS server down: state %s, %q, members kept %d", s.State, s.LastError, s.Members)

	// It comes back with a changed set.
	d.set("app.e2e.test", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	if err := d.start(); err != nil {
		return err
	}
	if err := waitStatus("the resolution to recover", func(s client.DiscoveryStatus) bool { return s.State == "ok" && s.Members == 3 }); err != nil {
		return err
	}
	if err := waitServedBy(members[3]); err != nil {
		return err
	}
	t.Logf("DNS server back: 127.0.0.5 added and serving")

	load.stop()
	stopped = true
	if n := load.failed.Load(); n != 0 {
		return fmt.Errorf("%d of %d requests failed after retries (last: %v)", n, load.sent.Load(), load.lastErr.Load())
	}
	t.Logf("%d requests, 0 failed (%d needed a client retry)", load.sent.Load(), load.firstTryFailed.Load())
	return nil
}

// dnsStack starts a gateway asking d for DNS and an agent, commits config
// (labelled c1) and waits until it is served.
func dnsStack(ctx context.Context, t *T, d *e2eDNS, config string) (*harness.Stack, error) {
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir})
	if err != nil {
		return nil, err
	}
	t.Cleanup(st.Close)
	c1, err := st.Repo.WriteCommit("config.yaml", config, "c1: upstream found by DNS")
	if err != nil {
		return nil, err
	}
	gw, err := harness.Start(t.dir, "gateway", append([]string{t.bins.Gateway}, append(st.GatewayArgs(), "--dns-resolver", d.addr)...)...)
	if err != nil {
		return nil, err
	}
	st.Gateway = gw
	if err := harness.WaitFor(ctx, 15*time.Second, "the gateway's admin socket to answer", func() (bool, error) {
		if gw.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", gw.Err(), gw.Log)
		}
		_, err := st.Admin.Status(ctx)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	if err := st.StartAgent(ctx); err != nil {
		return nil, err
	}
	return st, t.waitServed(ctx, st, c1, "c1")
}

// dnsStatus is the discovery state of upstream app in the gateway's status.
func dnsStatus(ctx context.Context, st *harness.Stack) (client.DiscoveryStatus, error) {
	s, err := st.Admin.Status(ctx)
	if err != nil {
		return client.DiscoveryStatus{}, err
	}
	return s.Discovery["app"], nil
}

// waitDNSStatus waits until upstream app's discovery state satisfies cond.
func waitDNSStatus(ctx context.Context, st *harness.Stack, what string, cond func(client.DiscoveryStatus) bool) error {
	var last client.DiscoveryStatus
	err := harness.WaitFor(ctx, 15*time.Second, what, func() (bool, error) {
		s, err := dnsStatus(ctx, st)
		last = s
		return err == nil && cond(s), err
	})
	if err != nil {
		return fmt.Errorf("%w (last status %+v)", err, last)
	}
	return nil
}

// waitServedBy waits until m has served 10 more requests.
func waitServedBy(ctx context.Context, m *dnsMember) error {
	n := m.served.Load()
	return harness.WaitFor(ctx, 15*time.Second, m.ip+" to take traffic", func() (bool, error) {
		return m.served.Load() > n+10, nil
	})
}

func dnsSRVStandby(ctx context.Context, t *T) error {
	members, port, err := startMembers([]string{"127.0.0.2", "127.0.0.3"})
	if err != nil {
		return Skip("loopback addresses 127.0.0.2-3 unusable here: " + err.Error())
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.close()
		}
	})
	primary, standby := members[0], members[1]
	d, err := startE2EDNS()
	if err != nil {
		return err
	}
	t.Cleanup(d.stop)
	d.set("a.e2e.test", "127.0.0.2")
	d.set("b.e2e.test", "127.0.0.3")
	d.setSRV("_http._tcp.app.e2e.test", port, []string{"a.e2e.test", "b.e2e.test"}, []uint16{10, 20})
	st, err := dnsStack(ctx, t, d, dnsConfigYAML("srv://_http._tcp.app.e2e.test", "c1"))
	if err != nil {
		return err
	}
	load := startDNSLoad("http://"+st.GatewayAddr+"/", 2)
	stopped := false
	defer func() {
		if !stopped {
			load.stop()
		}
	}()
	if err := waitServedBy(ctx, primary); err != nil {
		return err
	}
	if n := standby.served.Load(); n != 0 {
		return fmt.Errorf("the priority-20 record's member served %d requests while priority 10 had an address", n)
	}
	t.Logf("srv: the priority-10 member serves, the priority-20 one stands by")

	// The priority-10 target loses its address: the standby takes over.
	d.set("a.e2e.test")
	if err := waitDNSStatus(ctx, st, "the standby to be the member", func(s client.DiscoveryStatus) bool {
		return s.State == "ok" && s.Members == 1 && s.Draining == 0
	}); err != nil {
		return err
	}
	if err := waitServedBy(ctx, standby); err != nil {
		return err
	}
	primary.close()
	if err := waitServedBy(ctx, standby); err != nil {
		return err
	}
	t.Logf("srv: with no address for the priority-10 target, the priority-20 member serves; the old one drained and stopped")

	load.stop()
	stopped = true
	if n := load.failed.Load(); n != 0 {
		return fmt.Errorf("%d of %d requests failed after retries (last: %v)", n, load.sent.Load(), load.lastErr.Load())
	}
	t.Logf("%d requests, 0 failed (%d needed a client retry)", load.sent.Load(), load.firstTryFailed.Load())
	return nil
}
