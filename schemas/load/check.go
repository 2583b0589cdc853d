package load

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Bounds on user regexes: the source length and the size of the compiled
// program. RE2 runs in linear time, but a huge program still costs memory
// and time per request.
const (
	MaxRegexBytes = 1024
	MaxRegexInsts = 2000
)

// checker collects diagnostics with paths; positions are filled in later
// from the input (posIndex.locate).
type checker struct {
	cfg   *schemas.Config
	diags []schemas.Diagnostic
}

func (c *checker) errf(path string, format string, args ...any) {
	c.diags = append(c.diags, schemas.Diagnostic{Path: path, Message: fmt.Sprintf(format, args...)})
}

// check runs the semantic rules that need the whole config: references,
// weights, regexes, duplicate routes, URLs and secrets. cfg is decoded but
// not defaulted.
func check(cfg *schemas.Config) []schemas.Diagnostic {
	c := &checker{cfg: cfg}
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
	return c.diags
}

func (c *checker) upstream(at string, u schemas.Upstream) {
	for i, t := range u.Targets {
		p := fmt.Sprintf("%s.targets[%d]", at, i)
		if msg := checkTarget(t); msg != "" {
			c.errf(p, "%s", msg)
		}
	}
	if u.HashOn != nil {
		if u.Balance != schemas.BalanceHash {
			c.errf(at+".hashOn", "hashOn is used only with balance: hash")
		}
		c.hashOn(at+".hashOn", *u.HashOn)
	}
	if h := u.HealthCheck; h != nil && h.Interval != 0 && h.Timeout != 0 && h.Timeout > h.Interval {
		c.errf(at+".healthCheck.timeout", "timeout %s is longer than the interval %s", h.Timeout.D(), h.Interval.D())
	}
	if o := u.OutlierDetection; o != nil && o.BaseEjection != 0 && o.MaxEjection != 0 && o.BaseEjection > o.MaxEjection {
		c.errf(at+".outlierDetection.maxEjection", "maxEjection %s is shorter than baseEjection %s", o.MaxEjection.D(), o.BaseEjection.D())
	}
}

// checkTarget returns why t is not a usable upstream URL, or "".
func checkTarget(t string) string {
	u, err := url.Parse(t)
	if err != nil {
		return fmt.Sprintf("target %q is not a URL: %v", t, urlCause(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("target %q must be an http:// or https:// URL", t)
	}
	if u.Hostname() == "" {
		return fmt.Sprintf("target %q has no host", t)
	}
	if u.User != nil {
		return "target must not carry credentials: use requestHeaders or a policy"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("target %q has port %s, outside 1..65535", t, p)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("target %q must not have a query or fragment", t)
	}
	return ""
}

// urlCause unwraps *url.Error to its cause, whose text does not repeat the URL.
func urlCause(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (c *checker) hashOn(at string, h schemas.HashOn) {
	n := 0
	for _, set := range []bool{h.Header != "", h.Cookie != "", h.ClientIP} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.errf(at, "set exactly one of header, cookie or clientIP: true (%d set)", n)
	}
}

func (c *checker) route(at string, r schemas.Route) {
	m := r.Match
	pathType := cmpOr(m.PathType, schemas.PathPrefix)
	path := cmpOr(m.Path, "/")
	switch pathType {
	case schemas.PathRegex:
		c.regex(at+".match.path", path)
	case schemas.PathTemplate:
		if _, err := templateParams(path); err != nil {
			c.errf(at+".match.path", "%v", err)
		}
	}
	if pathType != schemas.PathRegex && !strings.HasPrefix(path, "/") {
		c.errf(at+".match.path", "path %q must start with /", path)
	}
	for _, kind := range []struct {
		name string
		m    map[string]schemas.StringMatch
	}{{"headers", m.Headers}, {"query", m.Query}} {
		for _, k := range slices.Sorted(maps.Keys(kind.m)) {
			c.stringMatch(formatPath(append(segments(at), "match", kind.name, k)), kind.m[k])
		}
	}
	seen := make(map[string]int, len(r.Backends))
	sum := 0
	for i, b := range r.Backends {
		p := fmt.Sprintf("%s.backends[%d]", at, i)
		sum += b.Weight
		if _, ok := c.cfg.Upstreams[b.Upstream]; !ok {
			c.errf(p+".upstream", "unknown upstream %q%s", b.Upstream, suggest(b.Upstream, slices.Sorted(maps.Keys(c.cfg.Upstreams)), "upstreams"))
		}
		if j, dup := seen[b.Upstream]; dup {
			c.errf(p+".upstream", "upstream %q is already backends[%d]: merge the weights", b.Upstream, j)
		}
		seen[b.Upstream] = i
	}
	if len(r.Backends) > 0 && sum != 100 {
		c.errf(at+".backends", "backend weights sum to %d; they must sum to 100", sum)
	}
	if r.Split != nil {
		c.hashOn(at+".split.hashOn", r.Split.HashOn)
	}
	if rw := r.Rewrite; rw != nil {
		if rw.Regex != nil {
			c.regex(at+".rewrite.regex.pattern", rw.Regex.Pattern)
		}
		if rw.Path != "" && strings.Contains(rw.Path, "{") {
			params, err := templateParams(path)
			if pathType != schemas.PathTemplate || err != nil {
				c.errf(at+".rewrite.path", "{param} in rewrite.path needs match.pathType: template")
			} else if names, err := templateParams(rw.Path); err != nil {
				c.errf(at+".rewrite.path", "%v", err)
			} else {
				for _, n := range names {
					if !slices.Contains(params, n) {
						c.errf(at+".rewrite.path", "{%s} is not a parameter of match.path %q", n, path)
					}
				}
			}
		}
	}
	if r.PerTryTimeout != 0 && r.Timeout != 0 && r.PerTryTimeout > r.Timeout {
		c.errf(at+".perTryTimeout", "perTryTimeout %s is longer than timeout %s", r.PerTryTimeout.D(), r.Timeout.D())
	}
	if rt := r.Retries; rt != nil && rt.BackoffBase != 0 && rt.BackoffMax != 0 && rt.BackoffBase > rt.BackoffMax {
		c.errf(at+".retries.backoffMax", "backoffMax %s is shorter than backoffBase %s", rt.BackoffMax.D(), rt.BackoffBase.D())
	}
	for i, u := range r.Upgrades {
		if err := schemas.CheckUpgrade(u); err != nil {
			c.errf(fmt.Sprintf("%s.upgrades[%d]", at, i), "%v", err)
		}
	}
	for i, p := range r.Policies {
		if _, ok := c.cfg.Policies[p]; !ok {
			c.errf(fmt.Sprintf("%s.policies[%d]", at, i), "unknown policy %q%s", p, suggest(p, slices.Sorted(maps.Keys(c.cfg.Policies)), "policies"))
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// suggest names the closest known name, or lists the known names when few.
func suggest(name string, known []string, what string) string {
	if s := closest(name, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) == 0 {
		return fmt.Sprintf(": no %s are defined", what)
	}
	if len(known) <= 5 {
		return fmt.Sprintf(" (defined %s: %s)", what, strings.Join(known, ", "))
	}
	return ""
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// templateParams returns the {param} names of a template path, refusing
// unbalanced braces, bad names and repeats.
func templateParams(p string) ([]string, error) {
	var names []string
	for rest := p; ; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			return names, nil
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("template %q has a } without {", p)
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return nil, fmt.Errorf("template %q has a { without }", p)
		}
		name := rest[i+1 : i+1+j]
		if !paramName.MatchString(name) {
			return nil, fmt.Errorf("template parameter {%s} must be a name of letters, digits and _", name)
		}
		if slices.Contains(names, name) {
			return nil, fmt.Errorf("template parameter {%s} appears twice", name)
		}
		names = append(names, name)
		rest = rest[i+j+2:]
	}
}

func (c *checker) stringMatch(at string, m schemas.StringMatch) {
	n := 0
	for _, set := range []bool{m.Exact != "", m.Prefix != "", m.Regex != "", m.Present} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.errf(at, "set exactly one of exact, prefix, regex or present: true (%d set)", n)
	}
	if m.Regex != "" {
		c.regex(at+".regex", m.Regex)
	}
}

// regex reports a pattern that does not compile or exceeds the bounds.
func (c *checker) regex(at, pattern string) {
	if msg := checkRegex(pattern); msg != "" {
		c.errf(at, "%s", msg)
	}
}

func checkRegex(pattern string) string {
	if len(pattern) > MaxRegexBytes {
		return fmt.Sprintf("regex is %d bytes, over the limit of %d", len(pattern), MaxRegexBytes)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return fmt.Sprintf("regex does not compile: %v", err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return fmt.Sprintf("regex does not compile: %v", err)
	}
	if len(prog.Inst) > MaxRegexInsts {
		return fmt.Sprintf("regex compiles to %d instructions, over the limit of %d: simplify it (large repeat counts multiply)", len(prog.Inst), MaxRegexInsts)
	}
	return ""
}

var sha256Key = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (c *checker) policy(at string, p schemas.Policy) {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"rateLimit", p.RateLimit != nil}, {"apiKey", p.APIKey != nil}, {"jwt", p.JWT != nil},
		{"cors", p.CORS != nil}, {"ipAllow", p.IPAllow != nil}, {"ipDeny", p.IPDeny != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		c.errf(at, "a policy needs exactly one of rateLimit, apiKey, jwt, cors, ipAllow, ipDeny")
	case 1:
	default:
		c.errf(at, "a policy has exactly one kind, this one has %s: split it into %d policies", strings.Join(kinds, " and "), len(kinds))
	}
	if k := p.APIKey; k != nil {
		for _, consumer := range slices.Sorted(maps.Keys(k.Keys)) {
			if !sha256Key.MatchString(k.Keys[consumer]) {
				// Never echo the value: it may be a key in clear.
				c.errf(formatPath(append(segments(at), "apiKey", "keys", consumer)),
					`API keys are stored as hashes: write "sha256:" and the 64 lowercase hex digits of SHA-256 of the key (printf %%s "$KEY" | sha256sum), never the key itself`)
			}
		}
	}
	if j := p.JWT; j != nil {
		hs := slices.Contains(j.Algorithms, "HS256")
		asym := slices.Contains(j.Algorithms, "RS256") || slices.Contains(j.Algorithms, "ES256")
		if hs && j.Secret == nil {
			c.errf(at+".jwt.algorithms", "HS256 needs secret: {env: NAME} or {file: PATH}")
		}
		if !hs && j.Secret != nil {
			c.errf(at+".jwt.secret", "secret is used only with HS256")
		}
		if asym && j.JWKS == nil && j.JWKSRef == nil {
			c.errf(at+".jwt.algorithms", "RS256 and ES256 need jwks or jwksRef")
		}
		if j.JWKS != nil && j.JWKSRef != nil {
			c.errf(at+".jwt.jwksRef", "set jwks or jwksRef, not both")
		}
		for _, ref := range []struct {
			name string
			r    *schemas.SecretRef
		}{{"secret", j.Secret}, {"jwksRef", j.JWKSRef}} {
			if ref.r != nil && (ref.r.Env == "") == (ref.r.File == "") {
				c.errf(at+".jwt."+ref.name, "a secret reference has exactly one of env or file")
			}
		}
	}
	if cr := p.CORS; cr != nil && cr.AllowCredentials && slices.Contains(cr.AllowOrigins, "*") {
		c.errf(at+".cors.allowCredentials", `allowCredentials cannot be used with allowOrigins "*": browsers refuse it; list the origins`)
	}
	for _, l := range []struct {
		name string
		l    *schemas.IPList
	}{{"ipAllow", p.IPAllow}, {"ipDeny", p.IPDeny}} {
		if l.l == nil {
			continue
		}
		for i, cidr := range l.l.CIDRs {
			if _, err := netip.ParsePrefix(cidr); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(cidr); err == nil {
				continue
			}
			c.errf(fmt.Sprintf("%s.%s.cidrs[%d]", at, l.name, i), "%q is neither a CIDR (10.0.0.0/8) nor an IP address", cidr)
		}
	}
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
