package router

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Match is the result of a successful lookup.
type Match struct {
	// Route is the name of the matched route (its key in Config.Routes).
	Route string
	// Index is the position of Route in Table.Names, so that a caller can keep
	// per-route state in a slice instead of a map keyed by name.
	Index int
	// Params holds the values of template {param}s, or of a regex path's named
	// groups. Nil when the route has none.
	Params map[string]string
}

// Table is a compiled, immutable route table. It is safe for concurrent use
// by any number of goroutines.
type Table struct {
	exact    map[string]*hostTable // by canonical host
	wildcard map[string]*hostTable // by suffix with its leading dot: ".example.com"
	anyHost  *hostTable            // routes without hosts, or with "*"
	names    []string              // route names, sorted; Match.Index points here
	n        int
}

// Host ranks: exact beats every wildcard (ranked by suffix length) beats any
// host.
const (
	rankExact = math.MaxInt
	rankAny   = 0
)

// hostTable holds the routes of one host level.
type hostTable struct {
	rank        int
	maxPriority int
	root        *node    // exact, prefix and template routes
	regex       []*route // in match order
}

// node is a node of the trie over path segments. Literal segments are
// children; a template's "{name}" segment is the param edge. Exact and prefix
// routes only ever use literal edges.
type node struct {
	children map[string]*node
	param    *node
	prefix   []*route // prefix routes whose segments end here, in match order
	end      []*route // exact and template routes ending here, in match order
	minOrder int      // smallest order in this subtree, to prune the walk
}

// Build compiles routes (already validated and defaulted, see schemas.Route
// and schemas.Match) into a Table. It returns a *schemas.InvalidError with one
// Diagnostic per problem (for instance Path "routes.NAME.match.path" for a bad
// regex, a regex over the size bounds or a bad template), and no Table.
func Build(routes map[string]schemas.Route) (*Table, error) {
	var diags []schemas.Diagnostic
	compiled := make([]*route, 0, len(routes))
	for name, r := range routes { // order does not matter: both outputs are sorted below
		c := compileRoute(name, r, &diags)
		hosts, ok := canonicalHosts(name, r.Match.Hosts, &diags)
		if c != nil && ok {
			c.hosts = hosts
			compiled = append(compiled, c)
		}
	}
	if len(diags) > 0 {
		slices.SortFunc(diags, func(a, b schemas.Diagnostic) int {
			return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
		})
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}

	t := &Table{exact: map[string]*hostTable{}, wildcard: map[string]*hostTable{}, n: len(compiled)}
	slices.SortFunc(compiled, func(a, b *route) int { return strings.Compare(a.name, b.name) })
	t.names = make([]string, len(compiled))
	for i, c := range compiled {
		c.index = i
		t.names[i] = c.name
	}
	slices.SortFunc(compiled, compareRoutes)
	for i, c := range compiled {
		c.order = i
	}
	for _, c := range compiled { // in match order, so every list stays sorted
		for _, h := range c.hosts {
			t.level(h).add(c)
		}
	}
	return t, nil
}

// compareRoutes orders routes within one host level: priority, then path
// specificity, then constraints, then name.
func compareRoutes(a, b *route) int {
	if c := cmp.Compare(b.priority, a.priority); c != 0 {
		return c
	}
	if c := cmp.Compare(b.class, a.class); c != 0 {
		return c
	}
	if c := cmp.Compare(b.litLen, a.litLen); c != 0 {
		return c
	}
	if c := cmp.Compare(b.sub, a.sub); c != 0 {
		return c
	}
	if c := cmp.Compare(min(len(b.methods), 1), min(len(a.methods), 1)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.headers), len(a.headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.query), len(a.query)); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// canonicalHosts returns the host keys of a route: a canonical exact host,
// a wildcard suffix starting with ".", or "*" for any host.
func canonicalHosts(name string, hosts []string, diags *[]schemas.Diagnostic) ([]string, bool) {
	if len(hosts) == 0 {
		return []string{"*"}, true
	}
	out := make([]string, 0, len(hosts))
	ok := true
	for i, h := range hosts {
		var key string
		switch {
		case h == "*":
			if !slices.Contains(out, "*") {
				out = append(out, "*")
			}
			continue
		case strings.HasPrefix(h, "*."):
			key = canonicalHost(h[1:])
		default:
			key = canonicalHost(h)
		}
		if key == "" || key == "." || strings.Contains(strings.TrimPrefix(h, "*."), "*") || strings.ContainsAny(key, "/ \t") {
			*diags = append(*diags, schemas.Diagnostic{
				Path:    fmt.Sprintf("routes.%s.match.hosts[%d]", name, i),
				Message: fmt.Sprintf("host %q must be a name, \"*.\" followed by a suffix, or \"*\"", h),
			})
			ok = false
			continue
		}
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	return out, ok
}

// level returns the host table for a host key, creating it.
func (t *Table) level(key string) *hostTable {
	switch {
	case key == "*":
		if t.anyHost == nil {
			t.anyHost = newHostTable(rankAny)
		}
		return t.anyHost
	case key[0] == '.':
		h := t.wildcard[key]
		if h == nil {
			h = newHostTable(len(key))
			t.wildcard[key] = h
		}
		return h
	default:
		h := t.exact[key]
		if h == nil {
			h = newHostTable(rankExact)
			t.exact[key] = h
		}
		return h
	}
}

func newHostTable(rank int) *hostTable {
	return &hostTable{rank: rank, maxPriority: math.MinInt, root: &node{minOrder: math.MaxInt}}
}

// add inserts c; routes must be added in match order so that every list
// stays sorted.
func (h *hostTable) add(c *route) {
	h.maxPriority = max(h.maxPriority, c.priority)
	if c.pathType == schemas.PathRegex {
		h.regex = append(h.regex, c)
		return
	}
	n := h.root
	for i, s := range c.segs {
		n.minOrder = min(n.minOrder, c.order)
		if c.isParam(i) {
			if n.param == nil {
				n.param = &node{minOrder: c.order}
			}
			n = n.param
			continue
		}
		if n.children == nil {
			n.children = map[string]*node{}
		}
		child := n.children[s]
		if child == nil {
			child = &node{minOrder: c.order}
			n.children[s] = child
		}
		n = child
	}
	n.minOrder = min(n.minOrder, c.order)
	if c.pathType == schemas.PathPrefix {
		n.prefix = append(n.prefix, c)
	} else {
		n.end = append(n.end, c)
	}
}

func (c *route) isParam(seg int) bool {
	for _, p := range c.params {
		if p.seg == seg {
			return true
		}
	}
	return false
}

// Len returns the number of routes in the table.
func (t *Table) Len() int { return t.n }

// Names returns the route names sorted, the index space of Match.Index. The
// caller must not modify the slice.
func (t *Table) Names() []string { return t.names }

// Match finds the route for r. ok=false means no route matched (404). It
// reads r.Host (else r.URL.Host), r.URL.Path, r.URL.RawQuery, r.Method and
// r.Header, and changes nothing.
func (t *Table) Match(r *http.Request) (m Match, ok bool) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	host = canonicalHost(host)
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	var best *route
	consider := func(h *hostTable) {
		if h == nil || (best != nil && h.maxPriority <= best.priority) {
			return
		}
		// Levels come in decreasing rank, so a later level wins only on a
		// higher priority.
		if c := h.lookup(path, r); c != nil && (best == nil || c.priority > best.priority) {
			best = c
		}
	}
	if len(t.exact) > 0 {
		consider(t.exact[host])
	}
	if len(t.wildcard) > 0 {
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				consider(t.wildcard[host[i:]])
			}
		}
	}
	consider(t.anyHost)
	if best == nil {
		return Match{}, false
	}
	return Match{Route: best.name, Index: best.index, Params: best.paramsOf(path)}, true
}

// lookup returns the first route of this level that matches, or nil.
func (h *hostTable) lookup(path string, r *http.Request) *route {
	var best *route
	if path[0] == '/' {
		best = h.root.walk(path[1:], nil, r)
	}
	for _, c := range h.regex {
		if best != nil && c.order >= best.order {
			break
		}
		if c.re.MatchString(path) && c.matchRequest(r) {
			return c
		}
	}
	return best
}

// pick returns the first route of list (sorted by order) that beats best and
// matches r, else best.
func pick(list []*route, best *route, r *http.Request) *route {
	for _, c := range list {
		if best != nil && c.order >= best.order {
			break
		}
		if c.matchRequest(r) {
			return c
		}
	}
	return best
}

// walk matches rest, the path after the segments that led to n, against the
// subtree of n: prefix routes on the way, exact and template routes where the
// path ends. It tries the literal edge, then the param edge, and skips a
// subtree that cannot beat best.
func (n *node) walk(rest string, best *route, r *http.Request) *route {
	if best != nil && n.minOrder >= best.order {
		return best
	}
	best = pick(n.prefix, best, r)
	seg, next, more := cutSegment(rest)
	if child := n.children[seg]; child != nil {
		best = child.step(next, more, best, r)
	}
	if n.param != nil && seg != "" {
		best = n.param.step(next, more, best, r)
	}
	return best
}

// step continues the walk in n after one segment; more says whether the
// path has segments left.
func (n *node) step(next string, more bool, best *route, r *http.Request) *route {
	if more {
		return n.walk(next, best, r)
	}
	best = pick(n.prefix, best, r)
	return pick(n.end, best, r)
}

// cutSegment splits the first segment off a path without its leading slash.
func cutSegment(rest string) (seg, next string, more bool) {
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i+1:], true
	}
	return rest, "", false
}

// matchRequest checks the methods, headers and query matchers of c.
func (c *route) matchRequest(r *http.Request) bool {
	if len(c.methods) > 0 && !slices.Contains(c.methods, r.Method) {
		return false
	}
	for i := range c.headers {
		m := &c.headers[i]
		vals := r.Header[m.name]
		found := false
		for _, v := range vals {
			if m.matches(v) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for i := range c.query {
		if !queryMatches(r.URL.RawQuery, &c.query[i]) {
			return false
		}
	}
	return true
}

// paramsOf extracts the parameters of a matched path, or nil.
func (c *route) paramsOf(path string) map[string]string {
	switch {
	case len(c.params) > 0:
		out := make(map[string]string, len(c.params))
		rest, j := path[1:], 0
		for i := 0; j < len(c.params); i++ {
			s, next, _ := cutSegment(rest)
			if c.params[j].seg == i {
				out[c.params[j].name] = s
				j++
			}
			rest = next
		}
		return out
	case c.reNames != nil:
		sub := c.re.FindStringSubmatch(path)
		if sub == nil {
			return nil
		}
		out := make(map[string]string, len(c.reNames))
		for i, n := range c.reNames {
			if n != "" {
				out[n] = sub[i]
			}
		}
		return out
	}
	return nil
}
