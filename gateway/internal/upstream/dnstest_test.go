package upstream

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer is a real DNS server on loopback (UDP and TCP on one port)
// whose records a test changes while a pool resolves them. It can be
// stopped and started again on the same port.
type dnsServer struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	hosts map[string][]net.IP // fqdn -> addresses
	srvs  map[string][]*dns.SRV
	ttl   uint32
	empty bool // answer NOERROR with no record
	fail  bool // answer SERVFAIL

	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// newDNSServer starts a server answering nothing until records are set.
func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{t: t, hosts: map[string][]net.IP{}, srvs: map[string][]*dns.SRV{}}
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dns server: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			_ = pc.Close()
			continue // the TCP port of the same number is taken: try another
		}
		s.addr = pc.LocalAddr().String()
		s.serve(pc, ln)
		t.Cleanup(s.stop)
		return s
	}
	t.Fatal("dns server: no port free for both UDP and TCP")
	return nil
}

func (s *dnsServer) serve(pc net.PacketConn, ln net.Listener) {
	h := dns.HandlerFunc(s.handle)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	s.udp.NotifyStartedFunc = func() { close(udpUp) }
	s.tcp.NotifyStartedFunc = func() { close(tcpUp) }
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-udpUp
	<-tcpUp
}

// stop shuts the server down: queries then fail.
func (s *dnsServer) stop() {
	s.mu.Lock()
	udp, tcp := s.udp, s.tcp
	s.udp, s.tcp = nil, nil
	s.mu.Unlock()
	if udp != nil {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	}
}

// start serves again on the same port.
func (s *dnsServer) start() {
	s.t.Helper()
	pc, err := net.ListenPacket("udp", s.addr)
	if err != nil {
		s.t.Fatalf("dns server restart: %v", err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("dns server restart: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve(pc, ln)
}

// setHosts sets the addresses of name.
func (s *dnsServer) setHosts(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.IP
	for _, ip := range ips {
		out = append(out, net.ParseIP(ip))
	}
	s.hosts[dns.Fqdn(name)] = out
}

// setSRV sets the SRV records of name.
func (s *dnsServer) setSRV(name string, recs ...*dns.SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[dns.Fqdn(name)] = recs
}

func (s *dnsServer) set(f func(s *dnsServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func srv(prio, weight, port uint16, target string) *dns.SRV {
	return &dns.SRV{Priority: prio, Weight: weight, Port: port, Target: dns.Fqdn(target)}
}

func (s *dnsServer) handle(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	if len(req.Question) != 1 || s.empty {
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.ttl}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		ips, ok := s.hosts[q.Name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil && q.Qtype == dns.TypeA {
				h := hdr
				h.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: h, A: v4})
			} else if v4 == nil && q.Qtype == dns.TypeAAAA {
				h := hdr
				h.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: ip})
			}
		}
	case dns.TypeSRV:
		recs, ok := s.srvs[q.Name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, r := range recs {
			c := *r
			c.Hdr = hdr
			c.Hdr.Rrtype = dns.TypeSRV
			m.Answer = append(m.Answer, &c)
		}
	}
	_ = w.WriteMsg(m)
}

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
