package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LookupFunc resolves a host name to its IP addresses; it has the
// signature of (*net.Resolver).LookupHost.
type LookupFunc func(ctx context.Context, host string) ([]string, error)

// DefaultCacheTTL is how long the addresses of a dns: spec are reused
// before the name is resolved again.
const DefaultCacheTTL = 5 * time.Second

// ErrBadSpec is wrapped by the errors of a --peers value that does not
// parse.
var ErrBadSpec = errors.New("bad peers spec")

// SetOptions configure a Set.
type SetOptions struct {
	// Lookup resolves names. Nil: net.DefaultResolver.LookupHost.
	Lookup LookupFunc
	// CacheTTL is how long a dns: name's addresses are reused. Default
	// DefaultCacheTTL; negative: resolved on every call.
	CacheTTL time.Duration
	// SelfPort is the port this replica's webhook listener serves. A peer
	// on this port at one of SelfIPs is this replica and is left out.
	// Empty: nothing is left out.
	SelfPort string
	// SelfIPs are this replica's addresses (its interfaces' addresses, its
	// pod IP). See LocalIPs.
	SelfIPs []netip.Addr
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Set is the list of peers of one --peers value. It is safe for
// concurrent use.
type Set struct {
	opts SetOptions
	// dnsName and dnsPort are set for a dns: spec; static for a list.
	dnsName, dnsPort string
	static           []string
	spec             string

	mu       sync.Mutex
	cached   []string
	cachedAt time.Time
}

// NewSet parses spec: "dns:NAME:PORT" (every A/AAAA record of NAME, such
// as a Kubernetes headless Service) or a comma-separated list of
// host:port. An empty spec is an empty Set.
func NewSet(spec string, opts SetOptions) (*Set, error) {
	if opts.Lookup == nil {
		opts.Lookup = net.DefaultResolver.LookupHost
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Set{opts: opts, spec: strings.TrimSpace(spec)}
	if s.spec == "" {
		return s, nil
	}
	if rest, ok := strings.CutPrefix(s.spec, "dns:"); ok {
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%w: %q: want dns:NAME:PORT", ErrBadSpec, spec)
		}
		if err := checkPort(port); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadSpec, spec, err)
		}
		s.dnsName, s.dnsPort = host, port
		return s, nil
	}
	for _, e := range strings.Split(s.spec, ",") {
		e = strings.TrimSpace(e)
		host, port, err := net.SplitHostPort(e)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%w: %q: want host:port", ErrBadSpec, e)
		}
		if err := checkPort(port); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadSpec, e, err)
		}
		s.static = append(s.static, net.JoinHostPort(host, port))
	}
	return s, nil
}

func checkPort(port string) error {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// String returns the spec the Set was made from.
func (s *Set) String() string { return s.spec }

// Empty reports whether the spec names no peer.
func (s *Set) Empty() bool { return s.dnsName == "" && len(s.static) == 0 }

// Hosts are the host names of the spec (the dns: name, the static list's
// names), without ports: the names a peer may use to reach this replica.
func (s *Set) Hosts() []string {
	if s.dnsName != "" {
		return []string{s.dnsName}
	}
	var out []string
	for _, a := range s.static {
		h, _, _ := net.SplitHostPort(a)
		out = append(out, h)
	}
	return out
}

// Addrs returns the peers' host:port addresses, sorted, without this
// replica. A dns: name is resolved again once its cache is older than
// CacheTTL; when that fails the error is returned with no address.
func (s *Set) Addrs(ctx context.Context) ([]string, error) {
	all, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for _, a := range all {
		if !s.isSelf(ctx, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// All returns every address of the spec, this replica's included; it is
// what `agent fleet` queries.
func (s *Set) All(ctx context.Context) ([]string, error) { return s.resolve(ctx) }

func (s *Set) resolve(ctx context.Context) ([]string, error) {
	if s.dnsName == "" {
		return slices.Clone(s.static), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if s.cached != nil && s.opts.CacheTTL > 0 && now.Sub(s.cachedAt) < s.opts.CacheTTL {
		return slices.Clone(s.cached), nil
	}
	ips, err := s.opts.Lookup(ctx, s.dnsName)
	if err != nil {
		return nil, fmt.Errorf("resolving peers %s: %w", s.dnsName, err)
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, s.dnsPort))
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	s.cached, s.cachedAt = addrs, now
	return slices.Clone(addrs), nil
}

// isSelf reports whether addr is this replica: SelfPort at one of SelfIPs.
// A static host name is resolved to tell; when that fails it is a peer.
func (s *Set) isSelf(ctx context.Context, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || s.opts.SelfPort == "" || port != s.opts.SelfPort {
		return false
	}
	ips := []string{host}
	if _, err := netip.ParseAddr(host); err != nil {
		if ips, err = s.opts.Lookup(ctx, host); err != nil {
			return false
		}
	}
	for _, h := range ips {
		ip, err := netip.ParseAddr(h)
		if err != nil {
			continue
		}
		if slices.Contains(s.opts.SelfIPs, ip.Unmap().WithZone("")) {
			return true
		}
	}
	return false
}

// LocalIPs returns the addresses of this host's interfaces (a pod's
// include its pod IP). When the listener is bound to one address, only
// that one is returned.
func LocalIPs(listen net.Addr) ([]netip.Addr, error) {
	if tcp, ok := listen.(*net.TCPAddr); ok && tcp.IP != nil && !tcp.IP.IsUnspecified() {
		ip, _ := netip.AddrFromSlice(tcp.IP)
		return []netip.Addr{ip.Unmap()}, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this host's addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap().WithZone(""))
		}
	}
	return out, nil
}
