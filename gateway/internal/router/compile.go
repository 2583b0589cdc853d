package router

import (
	"fmt"
	"maps"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Path classes, higher is more specific.
const (
	classRegex   = 1
	classLiteral = 2 // template or prefix, ordered by literal length
	classExact   = 3
	subPrefix    = 0
	subTemplate  = 1
	noParamIndex = -1
	templateOpen = '{'
)

// route is one compiled route. It is immutable once Build returns.
type route struct {
	name     string
	priority int
	// order is the route's position in the global match order (priority,
	// path specificity, constraints, name); lower wins among routes of one host
	// level.
	order int
	// index is the route's position in Table.Names.
	index int

	// hosts are the route's host keys: canonical exact hosts, wildcard
	// suffixes with their leading dot, or "*".
	hosts []string

	pathType string
	class    int
	litLen   int
	sub      int

	// segs are the path segments of exact, prefix and template routes, with
	// "" standing for a parameter in a template.
	segs []string
	// params are the template parameters, by segment index.
	params []param
	// re is the anchored path regex; reNames its named groups by index.
	re      *regexp.Regexp
	reNames []string

	methods []string
	headers []valueMatcher
	query   []valueMatcher
}

type param struct {
	seg  int
	name string
}

// valueMatcher is a compiled schemas.StringMatch for one header or query
// parameter.
type valueMatcher struct {
	name    string // canonical header key, or query parameter name
	exact   string
	prefix  string
	re      *regexp.Regexp
	present bool
	kind    uint8
}

const (
	kindExact uint8 = iota
	kindPrefix
	kindRegex
	kindPresent
)

func (m *valueMatcher) matches(v string) bool {
	switch m.kind {
	case kindExact:
		return v == m.exact
	case kindPrefix:
		return strings.HasPrefix(v, m.prefix)
	case kindRegex:
		return m.re.MatchString(v)
	default:
		return true
	}
}

// compileRegex compiles pattern as an anchored full match, refusing patterns
// that break the shared regex rule (rules.Regex, whose message is the
// error's).
func compileRegex(pattern string) (*regexp.Regexp, error) {
	if err := rules.Regex(pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex does not compile: %w", err)
	}
	return re, nil
}

// splitPath returns the segments of an absolute path: "/" is [""], "/a/b" is
// ["a" "b"], "/a/" is ["a" ""].
func splitPath(p string) []string {
	return strings.Split(p[1:], "/")
}

// prefixSegments returns the segments a prefix path must match: a trailing
// slash is dropped, and "/" has none.
func prefixSegments(p string) []string {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return splitPath(p)
}

// compileRoute compiles one route, appending a diagnostic per problem.
func compileRoute(name string, r schemas.Route, diags *[]schemas.Diagnostic) *route {
	base := "routes." + name + ".match"
	bad := func(path, format string, args ...any) {
		*diags = append(*diags, schemas.Diagnostic{Path: base + path, Message: fmt.Sprintf(format, args...)})
	}
	m := r.Match
	c := &route{name: name, priority: r.Priority, pathType: m.PathType}
	p := m.Path
	if p == "" {
		p = "/"
	}
	pt := m.PathType
	if pt == "" {
		pt = schemas.PathPrefix
	}
	c.pathType = pt
	ok := true
	switch pt {
	case schemas.PathExact, schemas.PathPrefix, schemas.PathTemplate:
		if !strings.HasPrefix(p, "/") {
			bad(".path", "path %q must start with /", p)
			ok = false
			break
		}
		switch pt {
		case schemas.PathExact:
			c.class, c.segs, c.litLen = classExact, splitPath(p), len(p)
		case schemas.PathPrefix:
			c.class, c.sub, c.segs = classLiteral, subPrefix, prefixSegments(p)
			c.litLen = len(strings.TrimSuffix(p, "/"))
		default:
			c.class, c.sub, c.segs = classLiteral, subTemplate, splitPath(p)
			c.litLen = len(p)
			names, err := rules.PathTemplate(p)
			if err != nil {
				bad(".path", "%v", err)
				ok = false
				break
			}
			n := 0
			for i, s := range c.segs {
				if strings.IndexByte(s, templateOpen) < 0 {
					continue
				}
				c.params = append(c.params, param{seg: i, name: names[n]})
				n++
				c.segs[i] = ""
				c.litLen -= len(s)
			}
		}
	case schemas.PathRegex:
		re, err := compileRegex(p)
		if err != nil {
			bad(".path", "%v", err)
			ok = false
			break
		}
		c.class, c.re = classRegex, re
		for _, n := range re.SubexpNames() {
			if n != "" {
				c.reNames = re.SubexpNames()
				break
			}
		}
	default:
		bad(".pathType", "unknown path type %q; use exact, prefix, regex or template", pt)
		ok = false
	}

	c.methods = append([]string(nil), m.Methods...)
	hs, hok := compileMatchers(m.Headers, true, base+".headers.", diags)
	qs, qok := compileMatchers(m.Query, false, base+".query.", diags)
	c.headers, c.query = hs, qs
	if !ok || !hok || !qok {
		return nil
	}
	return c
}

func compileMatchers(in map[string]schemas.StringMatch, header bool, base string, diags *[]schemas.Diagnostic) ([]valueMatcher, bool) {
	if len(in) == 0 {
		return nil, true
	}
	out := make([]valueMatcher, 0, len(in))
	ok := true
	for _, name := range slices.Sorted(maps.Keys(in)) {
		sm := in[name]
		vm := valueMatcher{name: name}
		if header {
			vm.name = textproto.CanonicalMIMEHeaderKey(name)
		}
		set := 0
		if sm.Exact != "" {
			set++
			vm.kind, vm.exact = kindExact, sm.Exact
		}
		if sm.Prefix != "" {
			set++
			vm.kind, vm.prefix = kindPrefix, sm.Prefix
		}
		if sm.Regex != "" {
			set++
			re, err := compileRegex(sm.Regex)
			if err != nil {
				*diags = append(*diags, schemas.Diagnostic{Path: base + name + ".regex", Message: err.Error()})
				ok = false
				continue
			}
			vm.kind, vm.re = kindRegex, re
		}
		if sm.Present {
			set++
			vm.kind, vm.present = kindPresent, true
		}
		if set != 1 {
			for _, v := range rules.StringMatch(sm) {
				*diags = append(*diags, v.At(base+name))
			}
			ok = false
			continue
		}
		out = append(out, vm)
	}
	return out, ok
}
