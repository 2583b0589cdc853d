package upstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ResolvConf is where a Resolver reads its servers, search list and ndots
// when no server is named.
const ResolvConf = "/etc/resolv.conf"

// resolveTimeout bounds one query to one server (UDP, and TCP after a
// truncated answer).
const resolveTimeout = 2 * time.Second

// errEmpty is a resolution that succeeded with no address.
var errEmpty = errors.New("no address in the answer")

// Resolver asks DNS servers for the members of dns:// and srv:// targets.
// Unlike net.Resolver it returns the records' TTLs, which decide when a
// pool resolves again. Its zero value is not usable; see NewResolver.
type Resolver struct {
	servers []string // host:port, tried in order
	search  []string // suffixes tried for a name with fewer than ndots dots
	ndots   int
}

// NewResolver returns a resolver asking server (host:port) alone, or,
// when server is empty, the servers of /etc/resolv.conf with its search
// list and ndots, as the system resolver would.
func NewResolver(server string) (*Resolver, error) {
	if server != "" {
		host, port, err := net.SplitHostPort(server)
		if err != nil {
			return nil, fmt.Errorf("dns resolver %q: want host:port: %w", server, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("dns resolver %q: port outside 1..65535", server)
		}
		return &Resolver{servers: []string{net.JoinHostPort(host, port)}, ndots: 1}, nil
	}
	cfg, err := dns.ClientConfigFromFile(ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading the dns resolver configuration: %w", err)
	}
	r := &Resolver{ndots: cfg.Ndots}
	for _, s := range cfg.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, cfg.Port))
	}
	for _, s := range cfg.Search {
		if s != "" && s != "." {
			r.search = append(r.search, dns.Fqdn(s))
		}
	}
	if len(r.servers) == 0 {
		return nil, fmt.Errorf("%s names no nameserver", ResolvConf)
	}
	return r, nil
}

// names returns the fully qualified names to try for name, in order, as
// the system resolver does: a name with a final dot, or with ndots dots or
// more, is tried as it is first.
func (r *Resolver) names(name string) []string {
	if dns.IsFqdn(name) {
		return []string{name}
	}
	var out []string
	asIs := strings.Count(name, ".") >= r.ndots
	if asIs {
		out = append(out, dns.Fqdn(name))
	}
	for _, s := range r.search {
		out = append(out, name+"."+s)
	}
	if !asIs {
		out = append(out, dns.Fqdn(name))
	}
	return out
}

// addr is one resolved member: an IP address and a port, and the weight
// of its SRV record.
type addr struct {
	ip     netip.Addr
	port   int
	weight uint32
}

func (a addr) String() string { return netip.AddrPortFrom(a.ip, uint16(a.port)).String() }

// resolution is the answer for a discovery target: its members, sorted,
// and the smallest TTL of the records that gave them. weighted is true
// for the members of SRV records, whose weights count.
type resolution struct {
	addrs    []addr
	ttl      time.Duration
	weighted bool
}

// lookupHost returns every A and AAAA address of name on port. An error
// from either query fails the whole lookup, so a half answer never
// shrinks a pool.
func (r *Resolver) lookupHost(ctx context.Context, name string, port int) (resolution, error) {
	var lastErr error
	for _, fq := range r.names(name) {
		res, err := r.addresses(ctx, fq, port, nil)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !errors.Is(err, errEmpty) {
			return resolution{}, err
		}
	}
	return resolution{}, lastErr
}

// addresses asks for the A and AAAA records of the fully qualified fq,
// using extra (the additional section of an SRV answer) first.
func (r *Resolver) addresses(ctx context.Context, fq string, port int, extra []dns.RR) (resolution, error) {
	res := resolution{ttl: -1}
	collect := func(rrs []dns.RR) {
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			case *dns.CNAME:
				res.ttl = minTTL(res.ttl, rr.Header().Ttl)
				continue
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				res.addrs = append(res.addrs, addr{ip: a.Unmap(), port: port})
				res.ttl = minTTL(res.ttl, rr.Header().Ttl)
			}
		}
	}
	for _, rr := range extra {
		if strings.EqualFold(rr.Header().Name, fq) {
			collect([]dns.RR{rr})
		}
	}
	if len(res.addrs) == 0 {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			ans, err := r.query(ctx, fq, qt)
			if err != nil {
				return resolution{}, err
			}
			collect(ans)
		}
	}
	if len(res.addrs) == 0 {
		return resolution{}, fmt.Errorf("resolving %s: %w", fq, errEmpty)
	}
	return res, nil
}

// lookupSRV returns the members named by the SRV records of name: the
// records of the lowest priority that has an address (the others stand by
// until it has none), each record's target resolved to its A and AAAA
// addresses on the record's port, weighing the record's weight.
func (r *Resolver) lookupSRV(ctx context.Context, name string) (resolution, error) {
	fq := dns.Fqdn(name)
	msg, err := r.exchange(ctx, fq, dns.TypeSRV)
	if err != nil {
		return resolution{}, err
	}
	var srvs []*dns.SRV
	ttl := time.Duration(-1)
	for _, rr := range msg.Answer {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			srvs = append(srvs, s)
			ttl = minTTL(ttl, s.Hdr.Ttl)
		}
	}
	if len(srvs) == 0 {
		return resolution{}, fmt.Errorf("resolving SRV %s: %w", fq, errEmpty)
	}
	slices.SortStableFunc(srvs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	srvs = srvs[:min(len(srvs), maxSRVRecords)]
	var lastErr error
	for i := 0; i < len(srvs); {
		j := i
		res := resolution{ttl: ttl, weighted: true}
		for ; j < len(srvs) && srvs[j].Priority == srvs[i].Priority; j++ {
			got, err := r.addresses(ctx, dns.Fqdn(srvs[j].Target), int(srvs[j].Port), msg.Extra)
			if err != nil {
				if !errors.Is(err, errEmpty) {
					return resolution{}, err
				}
				lastErr = err
				continue
			}
			for _, a := range got.addrs {
				a.weight = uint32(srvs[j].Weight)
				res.addrs = append(res.addrs, a)
			}
			res.ttl = min(res.ttl, got.ttl)
		}
		if len(res.addrs) > 0 {
			return res, nil
		}
		i = j
	}
	return resolution{}, lastErr
}

// query returns the answer section for fq and qtype; NXDOMAIN and an
// empty answer are an empty section.
func (r *Resolver) query(ctx context.Context, fq string, qtype uint16) ([]dns.RR, error) {
	msg, err := r.exchange(ctx, fq, qtype)
	if err != nil {
		return nil, err
	}
	return msg.Answer, nil
}

// exchange asks each server in turn until one answers NOERROR or
// NXDOMAIN, over UDP and again over TCP when the answer is truncated.
func (r *Resolver) exchange(ctx context.Context, fq string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(fq, qtype)
	m.SetEdns0(dns.DefaultMsgSize, false)
	var lastErr error
	for _, server := range r.servers {
		in, err := exchangeOne(ctx, m, server)
		if err != nil {
			lastErr = err
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return in, nil
		}
		lastErr = fmt.Errorf("dns server %s answered %s for %s %s", server, dns.RcodeToString[in.Rcode], fq, dns.TypeToString[qtype])
	}
	return nil, lastErr
}

func exchangeOne(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	in, err := exchangeNet(ctx, "udp", m, server)
	if err == nil && !in.Truncated {
		return in, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("asking %s for %s: %w", server, m.Question[0].Name, ctx.Err())
	}
	in, err2 := exchangeNet(ctx, "tcp", m, server)
	if err2 != nil {
		if err == nil {
			err = err2
		}
		return nil, fmt.Errorf("asking %s for %s: %w", server, m.Question[0].Name, err)
	}
	return in, nil
}

// exchangeNet sends m to server over network and reads the answer. The
// dns package bounds an exchange by the context's deadline only; ending
// ctx (the pool closing) also interrupts it here.
func exchangeNet(ctx context.Context, network string, m *dns.Msg, server string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: resolveTimeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	in, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	return in, err
}

func minTTL(cur time.Duration, ttl uint32) time.Duration {
	d := time.Duration(ttl) * time.Second
	if cur < 0 || d < cur {
		return d
	}
	return cur
}

// sortAddrs sorts addrs and merges the duplicates of one address and
// port, which keep the largest weight.
func sortAddrs(addrs []addr) []addr {
	slices.SortFunc(addrs, func(a, b addr) int {
		if c := a.ip.Compare(b.ip); c != 0 {
			return c
		}
		if c := cmp.Compare(a.port, b.port); c != 0 {
			return c
		}
		return cmp.Compare(b.weight, a.weight)
	})
	return slices.CompactFunc(addrs, func(a, b addr) bool { return a.ip == b.ip && a.port == b.port })
}
