package load

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// checker collects diagnostics with paths; positions are filled in later
// from the input (posIndex.locate).
type checker struct {
	cfg   *schemas.Config
	diags []schemas.Diagnostic
	// The messages of unknown references, one Suggester per kind: each
	// lists and sorts its names on its first unknown reference, once per
	// check.
	upstreams, plain, policies *rules.Suggester
}

func (c *checker) errf(path string, format string, args ...any) {
	c.diags = append(c.diags, schemas.Diagnostic{Path: path, Message: fmt.Sprintf(format, args...)})
}

// check runs the semantic rules that need the whole config: references,
// weights, regexes, duplicate routes, URLs and secrets. cfg is decoded but
// not defaulted.
func check(cfg *schemas.Config) []schemas.Diagnostic {
	c := &checker{
		cfg:       cfg,
		upstreams: rules.NewSuggester("upstream", "upstreams", func() []string { return slices.Sorted(maps.Keys(cfg.Upstreams)) }),
		plain:     rules.NewSuggester("upstream", "upstreams with targets", func() []string { return rules.PlainUpstreams(cfg.Upstreams) }),
		policies:  rules.NewSuggester("policy", "policies", func() []string { return slices.Sorted(maps.Keys(cfg.Policies)) }),
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		c.upstream(formatPath([]string{"upstreams", name}), cfg.Upstreams[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		c.policy(formatPath([]string{"policies", name}), cfg.Policies[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Routes)) {
		c.route(formatPath([]string{"routes", name}), cfg.Routes[name])
	}
	c.duplicateRoutes()
	if cfg.Safety != nil {
		c.add("safety", rules.Safety(*cfg.Safety))
	}
	return c.diags
}

func (c *checker) upstream(at string, u schemas.Upstream) {
	c.add(at, rules.Upstream(u))
	if u.Failover != nil {
		c.add(at, rules.FailoverWith(*u.Failover, c.cfg.Upstreams, c.plain.Unknown))
	}
}

// add reports violations of rules on the value at path at.
func (c *checker) add(at string, vs []rules.Violation) {
	for _, v := range vs {
		c.diags = append(c.diags, v.At(at))
	}
}

func (c *checker) route(at string, r schemas.Route) {
	c.add(at, rules.Route(r))
	if r.Safety != nil {
		c.add(at+".safety", rules.SafetyRule(*r.Safety))
	}
	for i, b := range r.Backends {
		if _, ok := c.cfg.Upstreams[b.Upstream]; !ok {
			c.errf(fmt.Sprintf("%s.backends[%d].upstream", at, i), "%s", c.upstreams.Unknown(b.Upstream))
		}
	}
	for i, p := range r.Policies {
		if _, ok := c.cfg.Policies[p]; !ok {
			c.errf(fmt.Sprintf("%s.policies[%d]", at, i), "%s", c.policies.Unknown(p))
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c *checker) policy(at string, p schemas.Policy) {
	c.add(at, rules.Policy(p))
}

// duplicateRoutes reports routes whose match is identical to another's: the
// same hosts, methods, path, path type, header and query matchers. With equal
// priority the two are duplicates; otherwise the lower one never matches.
func (c *checker) duplicateRoutes() {
	byKey := make(map[string]string, len(c.cfg.Routes))
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Routes)) {
		r := c.cfg.Routes[name]
		k := matchKey(r.Match)
		other, dup := byKey[k]
		if !dup {
			byKey[k] = name
			continue
		}
		o := c.cfg.Routes[other]
		at := formatPath([]string{"routes", name, "match"})
		switch {
		case o.Priority == r.Priority:
			c.errf(at, "same match as route %q: one of them never matches; remove one or tell them apart", other)
		case o.Priority > r.Priority:
			c.errf(at, "shadowed by route %q, which has the same match and a higher priority: this route never matches", other)
		default:
			// Keep the first name as the reference; report the loser.
			c.errf(formatPath([]string{"routes", other, "match"}), "shadowed by route %q, which has the same match and a higher priority: this route never matches", name)
			byKey[k] = name
		}
	}
}

// matchKey is a canonical string of a match: sets are sorted, hosts are
// lower-cased, unset fields take their defaults.
func matchKey(m schemas.Match) string {
	hosts := make([]string, len(m.Hosts))
	for i, h := range m.Hosts {
		hosts[i] = strings.ToLower(h)
	}
	sort.Strings(hosts)
	hosts = slices.Compact(hosts)
	methods := slices.Clone(m.Methods)
	sort.Strings(methods)
	methods = slices.Compact(methods)
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %q", hosts, methods, cmpOr(m.PathType, schemas.PathPrefix), cmpOr(m.Path, "/"))
	for i, kind := range []map[string]schemas.StringMatch{m.Headers, m.Query} {
		b.WriteString(" |")
		for _, k := range slices.Sorted(maps.Keys(kind)) {
			v := kind[k]
			if i == 0 {
				k = strings.ToLower(k) // header names are case-insensitive
			}
			fmt.Fprintf(&b, " %q=%q,%q,%q,%t", k, v.Exact, v.Prefix, v.Regex, v.Present)
		}
	}
	return b.String()
}
