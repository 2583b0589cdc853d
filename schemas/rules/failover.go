package rules

import (
	"fmt"
	"slices"

	"github.com/gitgate/gitgate/schemas"
)

// failoverOnly checks an upstream with a failover section: it has no
// targets and none of the options that belong to its groups (which carry
// their own targets, checks and connection settings). u may be defaulted
// or not, so a field holding its default counts as unset.
func failoverOnly(u schemas.Upstream) []Violation {
	var out []Violation
	if len(u.Targets) > 0 {
		out = append(out, violation(".targets", "an upstream has either targets or failover, not both: put the targets in the upstreams its groups name"))
	}
	set := func(field string, isSet bool) {
		if isSet {
			out = append(out, violation(field, "a failover upstream takes no %s: set it on the upstreams its groups name", field[1:]))
		}
	}
	set(".balance", u.Balance != "" && u.Balance != schemas.BalanceRoundRobin)
	set(".hashOn", u.HashOn != nil)
	set(".healthCheck", u.HealthCheck != nil)
	set(".outlierDetection", u.OutlierDetection != nil)
	set(".circuitBreaker", u.CircuitBreaker != nil)
	set(".maxConnsPerTarget", u.MaxConnsPerTarget != 0)
	set(".maxIdleConnsPerTarget", u.MaxIdleConnsPerTarget != 0 && u.MaxIdleConnsPerTarget != schemas.DefaultMaxIdleConnsPerTarget)
	set(".connectTimeout", u.ConnectTimeout != 0 && u.ConnectTimeout.D() != schemas.DefaultConnectTimeout)
	set(".tls", u.TLS != nil)
	set(".protocol", u.Protocol != "" && u.Protocol != schemas.ProtocolHTTP1)
	if u.Failover.MinHealthy < 0 {
		out = append(out, violation(".failover.minHealthy", "minHealthy %d must be at least 1", u.Failover.MinHealthy))
	}
	return out
}

// Failover checks the groups of failover upstream f against upstreams,
// the config's upstreams: at least one group, each a defined upstream with
// targets (not itself a failover upstream, which also rules out cycles),
// none named twice. Fields are under ".failover".
func Failover(f schemas.Failover, upstreams map[string]schemas.Upstream) []Violation {
	return FailoverWith(f, upstreams, NewSuggester("upstream", "upstreams with targets", func() []string { return PlainUpstreams(upstreams) }).Unknown)
}

// FailoverWith is Failover with unknown making the message for a group
// that names no upstream: a checker of many failover upstreams passes one
// Suggester's, so that the names are listed and sorted once, not once per
// failover upstream (quadratic in a config of thousands).
func FailoverWith(f schemas.Failover, upstreams map[string]schemas.Upstream, unknown func(name string) string) []Violation {
	if len(f.Groups) == 0 {
		return []Violation{violation(".failover.groups", "a failover upstream needs at least one group (an upstream with targets), primary first")}
	}
	var out []Violation
	seen := make(map[string]bool, len(f.Groups))
	for i, g := range f.Groups {
		field := fmt.Sprintf(".failover.groups[%d]", i)
		u, ok := upstreams[g]
		switch {
		case !ok:
			out = append(out, violation(field, "%s", unknown(g)))
		case u.Failover != nil:
			out = append(out, violation(field, "group %q is itself a failover upstream: name upstreams with targets", g))
		case seen[g]:
			out = append(out, violation(field, "group %q is named twice", g))
		}
		seen[g] = true
	}
	return out
}

// PlainUpstreams returns the names of the upstreams with targets (not
// failover upstreams), sorted.
func PlainUpstreams(upstreams map[string]schemas.Upstream) []string {
	var plain []string
	for name, u := range upstreams {
		if u.Failover == nil {
			plain = append(plain, name)
		}
	}
	slices.Sort(plain)
	return plain
}
