package router

import (
	"fmt"
	"maps"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Bounds on regular expressions (path, header and query regexes). RE2 runs in
// time linear in the input, but a huge program still costs memory and time
// per request, so the compiled size is capped too.
const (
	// MaxRegexBytes is the longest accepted pattern, in bytes.
	MaxRegexBytes = 1024
	// MaxRegexInstructions caps the compiled program size of a pattern, so that
	// a short pattern with large counted repetitions ("(a{1,100}){1,100}") is
	// refused too.
	MaxRegexInstructions = 4096
)

// Path classes, higher is more specific.
const (
	classRegex    = 1
	classLiteral  = 2 // template or prefix, ordered by literal length
	classExact    = 3
	subPrefix     = 0
	subTemplate   = 1
	noParamIndex  = -1
	templateOpen  = '{'
	templateClose = '}'
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
// over the size bounds.
func compileRegex(pattern string) (*regexp.Regexp, error) {
	if len(pattern) > MaxRegexBytes {
		return nil, fmt.Errorf("regex is %d bytes, over the limit of %d", len(pattern), MaxRegexBytes)
	}
	anchored := `^(?:` + pattern + `)$`
	parsed, err := syntax.Parse(anchored, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("regex does not compile: %w", err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, fmt.Errorf("regex does not compile: %w", err)
	}
	if n := len(prog.Inst); n > MaxRegexInstructions {
		return nil, fmt.Errorf("regex compiles to %d instructions, over the limit of %d; use fewer or smaller counted repetitions", n, MaxRegexInstructions)
	}
	re, err := regexp.Compile(anchored)
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

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
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
			bad(".path", "%s path %q must start with \"/\"", pt, p)
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
			seen := map[string]bool{}
			for i, s := range c.segs {
				if strings.IndexByte(s, templateOpen) < 0 && strings.IndexByte(s, templateClose) < 0 {
					continue
				}
				pn := ""
				if len(s) >= 2 && s[0] == templateOpen && s[len(s)-1] == templateClose {
					pn = s[1 : len(s)-1]
				}
				if !validParamName(pn) {
					bad(".path", "template %q: segment %q must be a literal or a whole {name} parameter with a name of letters, digits and _", p, s)
					ok = false
					continue
				}
				if seen[pn] {
					bad(".path", "template %q: parameter {%s} appears twice", p, pn)
					ok = false
					continue
				}
				seen[pn] = true
				c.params = append(c.params, param{seg: i, name: pn})
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
			*diags = append(*diags, schemas.Diagnostic{Path: base + name, Message: fmt.Sprintf("set exactly one of exact, prefix, regex or present (%d set)", set)})
			ok = false
			continue
		}
		out = append(out, vm)
	}
	return out, ok
}
