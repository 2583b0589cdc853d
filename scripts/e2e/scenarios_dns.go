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
	})
}

// e2eDNS is a DNS server on loopback (UDP and TCP, one port) answering A
// records for one name, which the scenario changes; it can die and come
// back on the same port.
type e2eDNS struct {
	addr string
	mu   sync.Mutex
	name string
	ips  []net.IP
	udp  *dns.Server
	tcp  *dns.Server
}

func startE2EDNS(name string) (*e2eDNS, error) {
	d := &e2eDNS{name: dns.Fqdn(name)}
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

func (d *e2eDNS) set(ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ips = d.ips[:0]
	for _, ip := range ips {
		d.ips = append(d.ips, net.ParseIP(ip))
	}
}

func (d *e2eDNS) handle(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(req.Question) == 1 && req.Question[0].Name == d.name && req.Question[0].Qtype == dns.TypeA {
		for _, ip := range d.ips {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: d.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: ip})
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

func dnsConfigYAML(port int, label string) string {
	return fmt.Sprintf(`upstreams:
  app:
    targets: ["dns://app.e2e.test:%d"]
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
`, port, label)
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
	d, err := startE2EDNS("app.e2e.test")
	if err != nil {
		return err
	}
	t.Cleanup(d.stop)
	d.set("127.0.0.2")

	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir})
	if err != nil {
		return err
	}
	t.Cleanup(st.Close)
	c1, err := st.Repo.WriteCommit("config.yaml", dnsConfigYAML(port, "c1"), "c1: upstream by dns")
	if err != nil {
		return err
	}
	gw, err := harness.Start(t.dir, "gateway", append([]string{t.bins.Gateway}, append(st.GatewayArgs(), "--dns-resolver", d.addr)...)...)
	if err != nil {
		return err
	}
	st.Gateway = gw
	if err := harness.WaitFor(ctx, 15*time.Second, "the gateway's admin socket to answer", func() (bool, error) {
		if gw.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", gw.Err(), gw.Log)
		}
		_, err := st.Admin.Status(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	if err := st.StartAgent(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return err
	}
	discovery := func() (client.DiscoveryStatus, error) {
		s, err := st.Admin.Status(ctx)
		if err != nil {
			return client.DiscoveryStatus{}, err
		}
		return s.Discovery["app"], nil
	}
	waitStatus := func(what string, cond func(client.DiscoveryStatus) bool) error {
		var last client.DiscoveryStatus
		err := harness.WaitFor(ctx, 15*time.Second, what, func() (bool, error) {
			s, err := discovery()
			last = s
			return err == nil && cond(s), err
		})
		if err != nil {
			return fmt.Errorf("%w (last status %+v)", err, last)
		}
		return nil
	}
	waitServedBy := func(m *dnsMember) error {
		n := m.served.Load()
		return harness.WaitFor(ctx, 15*time.Second, m.ip+" to take traffic", func() (bool, error) {
			return m.served.Load() > n+10, nil
		})
	}

	load := startDNSLoad("http://"+st.GatewayAddr+"/", 4)
	stopped := false
	defer func() {
		if !stopped {
			load.stop()
		}
	}()

	// Two members appear.
	d.set("127.0.0.2", "127.0.0.3", "127.0.0.4")
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
	d.set("127.0.0.3", "127.0.0.4")
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
	d.set("127.0.0.3", "127.0.0.4", "127.0.0.5")
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
