package rules

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Schemes of the discovery targets.
const (
	// SchemeDNS is dns://NAME:PORT: every A and AAAA record of NAME, on PORT.
	SchemeDNS = "dns"
	// SchemeSRV is srv://_service._proto.NAME: the SRV records of the name.
	SchemeSRV = "srv"
)

// DiscoveryTarget is a parsed dns:// or srv:// target.
type DiscoveryTarget struct {
	// Scheme is SchemeDNS or SchemeSRV.
	Scheme string
	// Name is the DNS name queried, fully qualified (with the final dot
	// only when the target had one).
	Name string
	// Port is the members' port of a dns:// target; 0 for srv://, whose
	// records carry it.
	Port int
}

// IsDiscovery reports whether t names a discovery scheme (dns:// or
// srv://), well formed or not.
func IsDiscovery(t string) bool {
	return strings.HasPrefix(t, SchemeDNS+"://") || strings.HasPrefix(t, SchemeSRV+"://")
}

// ParseDiscovery parses a dns://NAME:PORT or srv://_service._proto.NAME
// target. NAME must be a DNS name (not an address: use an http:// target),
// with no credentials, path, query or fragment; a dns:// target needs a port
// in 1..65535 and an srv:// target has none (its records carry it).
func ParseDiscovery(t string) (DiscoveryTarget, error) {
	u, err := url.Parse(t)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return DiscoveryTarget{}, fail("target %q is not a URL: %v", t, err)
	}
	if u.Scheme != SchemeDNS && u.Scheme != SchemeSRV {
		return DiscoveryTarget{}, fail("target %q must be a dns:// or srv:// URL", t)
	}
	if u.User != nil {
		return DiscoveryTarget{}, fail("target must not carry credentials: use requestHeaders or a policy")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return DiscoveryTarget{}, fail("target %q must not have a path, query or fragment", t)
	}
	d := DiscoveryTarget{Scheme: u.Scheme, Name: u.Hostname()}
	if err := dnsName(d.Name); err != nil {
		return DiscoveryTarget{}, fail("target %q: %v", t, err)
	}
	switch u.Scheme {
	case SchemeDNS:
		p := u.Port()
		if p == "" {
			return DiscoveryTarget{}, fail("target %q needs a port: dns://NAME:PORT", t)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return DiscoveryTarget{}, fail("target %q has port %s, outside 1..65535", t, p)
		}
		d.Port = n
	case SchemeSRV:
		if u.Port() != "" {
			return DiscoveryTarget{}, fail("target %q must not have a port: its SRV records carry the members' ports", t)
		}
		labels := strings.Split(d.Name, ".")
		if len(labels) < 3 || !strings.HasPrefix(labels[0], "_") || labels[1] != "_tcp" {
			return DiscoveryTarget{}, fail("target %q must be srv://_service._tcp.NAME", t)
		}
	}
	return d, nil
}

// dnsName reports a name that is not a DNS name: labels of 1 to 63
// letters, digits, '-' or '_', 253 characters at most, not an IP address.
func dnsName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return fmt.Errorf("no name to resolve")
	}
	if _, err := netip.ParseAddr(n); err == nil {
		return fmt.Errorf("%q is an address, not a name: use an http:// or https:// target", name)
	}
	if len(n) > 253 {
		return fmt.Errorf("name longer than 253 characters")
	}
	digits := true
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("name %q has an empty label or one longer than 63 characters", name)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
				digits = false
			default:
				return fmt.Errorf("name %q has a character %q that a DNS name cannot", name, c)
			}
		}
	}
	if digits {
		return fmt.Errorf("%q is all digits, not a name", name)
	}
	return nil
}

// discovery checks an upstream's discovery target and section: a
// discovery target is the upstream's only target, and a discovery section
// goes with one, its minInterval within its maxInterval.
func discovery(u schemas.Upstream) []Violation {
	var out []Violation
	found := false
	for i, t := range u.Targets {
		if !IsDiscovery(t) {
			continue
		}
		found = true
		if _, err := ParseDiscovery(t); err != nil {
			out = append(out, at(fmt.Sprintf(".targets[%d]", i), err)...)
		}
		if len(u.Targets) > 1 {
			out = append(out, violation(fmt.Sprintf(".targets[%d]", i), "a %s target must be the upstream's only target: put other targets in another upstream", t[:3]+"://"))
		}
	}
	if d := u.Discovery; d != nil {
		if !found {
			out = append(out, violation(".discovery", "discovery is used only with a dns:// or srv:// target"))
		}
		minI := or(d.MinInterval, schemas.DefaultDiscoveryMinInterval)
		maxI := d.MaxInterval.D()
		if maxI == 0 {
			maxI = max(schemas.DefaultDiscoveryMaxInterval, minI)
		}
		if minI > maxI {
			out = append(out, violation(".discovery.maxInterval", "maxInterval %s is shorter than minInterval %s", maxI, minI))
		}
	}
	return out
}

// ServerName is the name a discovered https:// member's certificate is
// verified against when the upstream's tls section names none: NAME of
// dns://NAME:PORT, and NAME of srv://_service._tcp.NAME.
func (d DiscoveryTarget) ServerName() string {
	n := strings.TrimSuffix(d.Name, ".")
	if d.Scheme == SchemeSRV {
		if parts := strings.SplitN(n, ".", 3); len(parts) == 3 {
			return parts[2]
		}
	}
	return n
}
