package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Route checks the rules of one route that CUE cannot express and that need
// no other part of the config: the match path for its type, header and
// query matchers, backend weights, a sticky split, the rewrite, timeouts,
// retry backoff and upgrade protocols. References to upstreams and
// policies are checked by the caller with Unknown. r may be defaulted or
// not.
func Route(r schemas.Route) []Violation {
	var out []Violation
	m := r.Match
	pathType := cmp(m.PathType, schemas.PathPrefix)
	path := cmp(m.Path, "/")
	var params []string
	var templateErr error
	switch pathType {
	case schemas.PathRegex:
		out = append(out, at(".match.path", Regex(path))...)
	case schemas.PathTemplate:
		params, templateErr = PathTemplate(path)
		out = append(out, at(".match.path", templateErr)...)
	}
	if pathType != schemas.PathRegex && !strings.HasPrefix(path, "/") {
		out = append(out, violation(".match.path", "path %q must start with /", path))
	}
	out = append(out, stringMatches(".match.headers.", m.Headers)...)
	out = append(out, stringMatches(".match.query.", m.Query)...)
	out = append(out, Backends(r.Backends)...)
	out = append(out, answer(r)...)
	if r.Split != nil {
		out = append(out, at(".split.hashOn", HashOn(r.Split.HashOn))...)
	}
	if rw := r.Rewrite; rw != nil {
		if rw.Regex != nil {
			out = append(out, at(".rewrite.regex.pattern", Regex(rw.Regex.Pattern))...)
		}
		if strings.ContainsAny(rw.Path, "{}") {
			names, err := RewriteTemplate(rw.Path)
			switch {
			case err != nil:
				out = append(out, at(".rewrite.path", err)...)
			case pathType != schemas.PathTemplate || templateErr != nil:
				out = append(out, violation(".rewrite.path", "{param} in rewrite.path needs match.pathType: template"))
			default:
				for _, n := range names {
					if !slices.Contains(params, n) {
						out = append(out, violation(".rewrite.path", "{%s} is not a parameter of match.path %q", n, path))
					}
				}
			}
		}
	}
	// As in Upstream, an unset duration stands for its default.
	if r.PerTryTimeout != 0 {
		if total := or(r.Timeout, schemas.DefaultRouteTimeout); r.PerTryTimeout.D() > total {
			out = append(out, violation(".perTryTimeout", "perTryTimeout %s is longer than timeout %s", r.PerTryTimeout.D(), total))
		}
	}
	if rt := r.Retries; rt != nil {
		if base, most := or(rt.BackoffBase, schemas.DefaultBackoffBase), or(rt.BackoffMax, schemas.DefaultBackoffMax); base > most {
			out = append(out, violation(".retries.backoffMax", "backoffMax %s is shorter than backoffBase %s", most, base))
		}
	}
	if r.Cache != nil {
		out = append(out, RouteCache(*r.Cache)...)
	}
	for i, u := range r.Upgrades {
		if err := Upgrade(u); err != nil {
			out = append(out, at(fmt.Sprintf(".upgrades[%d]", i), err)...)
		}
	}
	return out
}

// stringMatches checks the matchers of ms, keyed by name, under field.
func stringMatches(field string, ms map[string]schemas.StringMatch) []Violation {
	if len(ms) == 0 {
		return nil
	}
	var out []Violation
	for _, k := range slices.Sorted(maps.Keys(ms)) {
		for _, v := range StringMatch(ms[k]) {
			v.Field = field + k + v.Field
			out = append(out, v)
		}
	}
	return out
}

// Backends checks a route's weighted backends: each weight within 0..100,
// each upstream once, and the weights summing to 100.
func Backends(bs []schemas.Backend) []Violation {
	var out []Violation
	sum := 0
	for i, b := range bs {
		sum += b.Weight
		if b.Weight < 0 || b.Weight > 100 {
			out = append(out, violation(fmt.Sprintf(".backends[%d].weight", i), "weight %d is outside 0..100", b.Weight))
		}
		// A route has a handful of backends: a scan is cheaper than a map.
		if j := slices.IndexFunc(bs[:i], func(o schemas.Backend) bool { return o.Upstream == b.Upstream }); j >= 0 {
			out = append(out, violation(fmt.Sprintf(".backends[%d].upstream", i), "upstream %q is already backends[%d]: merge the weights", b.Upstream, j))
		}
	}
	if len(bs) > 0 && sum != 100 {
		out = append(out, violation(".backends", "backend weights sum to %d; they must sum to 100", sum))
	}
	return out
}

// StringMatch checks a header or query matcher: exactly one way to match,
// and a usable regex.
func StringMatch(m schemas.StringMatch) []Violation {
	var out []Violation
	if n := count(m.Exact != "", m.Prefix != "", m.Regex != "", m.Present); n != 1 {
		out = append(out, violation("", "set exactly one of exact, prefix, regex or present: true (%d set)", n))
	}
	if m.Regex != "" {
		out = append(out, at(".regex", Regex(m.Regex))...)
	}
	return out
}

// PathTemplate returns the parameter names of a match template such as
// "/users/{id}/posts/{post}": every segment is a literal without braces or
// one whole {name} parameter, a name is letters, digits and _ (not
// starting with a digit), and no name appears twice.
func PathTemplate(p string) ([]string, error) {
	var names []string
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || !paramName(name) {
			return nil, fail("template %q: segment %q must be a literal or a whole {name} parameter with a name of letters, digits and _", p, seg)
		}
		if len(names) == MaxTemplateParams {
			return nil, fail("template has more than %d parameters", MaxTemplateParams)
		}
		if slices.Contains(names, name) {
			return nil, fail("template parameter {%s} appears twice", name)
		}
		names = append(names, name)
	}
	return names, nil
}

// MaxTemplateParams bounds the parameters of a path or rewrite template.
// Each is checked against the ones before it, and a path of thousands of
// parameters (a few hundred KB) took seconds to check.
const MaxTemplateParams = 64

// RewriteTemplate returns the parameter names of a rewrite path such as
// "/v2/{id}.json", where a {name} may stand anywhere: braces balance, a name
// is letters, digits and _ (not starting with a digit), and no name appears
// twice.
func RewriteTemplate(p string) ([]string, error) {
	var names []string
	for rest := p; ; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			return names, nil
		}
		if rest[i] == '}' {
			return nil, fail("template %q has a } without {", p)
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return nil, fail("template %q has a { without }", p)
		}
		name := rest[i+1 : i+1+j]
		if !paramName(name) {
			return nil, fail("template parameter {%s} must be a name of letters, digits and _", name)
		}
		if len(names) == MaxTemplateParams {
			return nil, fail("template has more than %d parameters", MaxTemplateParams)
		}
		if slices.Contains(names, name) {
			return nil, fail("template parameter {%s} appears twice", name)
		}
		names = append(names, name)
		rest = rest[i+j+2:]
	}
}

func paramName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
