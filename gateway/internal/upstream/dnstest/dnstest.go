// Package dnstest runs a real DNS server on loopback for tests: UDP and
// TCP on one port, with records a test changes while the code under test
// resolves them, and a Stop and Start on the same port.
package dnstest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a real DNS server on loopback (UDP and TCP on one port)
// whose records a test changes while a pool resolves them. It can be
// stopped and started again on the same port.
type Server struct {
	t *testing.T
	// Addr is the server's host:port.
	Addr string

	mu    sync.Mutex
	hosts map[string][]net.IP // fqdn -> addresses
	srvs  map[string][]*dns.SRV
	ttl   uint32
	empty bool // answer NOERROR with no record
	fail  bool // answer SERVFAIL
	trunc bool // answer over UDP truncated, with no record

	// Queries counts the questions answered; TCPQueries those over TCP.
	Queries, TCPQueries atomic.Int64
	udp                 *dns.Server
	tcp                 *dns.Server
}

// New starts a server, stopped at the end of the test. It answers
// NXDOMAIN until records are set.
func New(t *testing.T) *Server {
	t.Helper()
	s := &Server{t: t, hosts: map[string][]net.IP{}, srvs: map[string][]*dns.SRV{}}
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
		s.Addr = pc.LocalAddr().String()
		s.serve(pc, ln)
		t.Cleanup(s.Stop)
		return s
	}
	t.Fatal("dns server: no port free for both UDP and TCP")
	return nil
}

func (s *Server) serve(pc net.PacketConn, ln net.Listener) {
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

// Stop shuts the server down: queries then fail.
func (s *Server) Stop() {
	s.mu.Lock()
	udp, tcp := s.udp, s.tcp
	s.udp, s.tcp = nil, nil
	s.mu.Unlock()
	if udp != nil {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	}
}

// Start serves again on the same port after Stop.
func (s *Server) Start() {
	s.t.Helper()
	pc, err := net.ListenPacket("udp", s.Addr)
	if err != nil {
		s.t.Fatalf("dns server restart: %v", err)
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.t.Fatalf("dns server restart: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve(pc, ln)
}

// SetHosts sets the A and AAAA records of name; none: an empty answer.
func (s *Server) SetHosts(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.IP
	for _, ip := range ips {
		out = append(out, net.ParseIP(ip))
	}
	s.hosts[dns.Fqdn(name)] = out
}

// SetSRV sets the SRV records of name.
func (s *Server) SetSRV(name string, recs ...*dns.SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[dns.Fqdn(name)] = recs
}

// SetTTL sets the TTL of every record answered.
func (s *Server) SetTTL(ttl uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = ttl
}

// SetEmpty makes every answer NOERROR without a record (true) or not.
func (s *Server) SetEmpty(empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.empty = empty
}

// SetTruncate makes every answer over UDP truncated (true), so that
// clients ask again over TCP, or not.
func (s *Server) SetTruncate(trunc bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trunc = trunc
}

// SetFail makes every answer SERVFAIL (true) or not.
func (s *Server) SetFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// Remove removes every record of name: NXDOMAIN.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, dns.Fqdn(name))
	delete(s.srvs, dns.Fqdn(name))
}

// SRV returns an SRV record of target:port.
func SRV(prio, weight, port uint16, target string) *dns.SRV {
	return &dns.SRV{Priority: prio, Weight: weight, Port: port, Target: dns.Fqdn(target)}
}

func (s *Server) handle(w dns.ResponseWriter, req *dns.Msg) {
	s.Queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.RemoteAddr().Network() == "tcp" {
		s.TCPQueries.Add(1)
	} else if s.trunc {
		m.Truncated = true
		_ = w.WriteMsg(m)
		return
	}
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
