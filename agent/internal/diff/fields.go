package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gitgate/gitgate/schemas"
)

// maxShown caps a value's readable form in runes; longer values end in "…".
// The comparison always uses the whole value.
const maxShown = 200

// leafKind says how a leaf's change is summarized.
type leafKind int

const (
	leafScalar   leafKind = iota
	leafList              // a list of scalars
	leafBackends          // a route's weighted backends
	leafPolicies          // a route's attached policy names
	leafMasked            // a sensitive value
)

// leaf is one comparable value of an entry at a field path.
type leaf struct {
	path  string
	kind  leafKind
	raw   string   // canonical form compared between sides
	show  string   // readable form, already masked
	items []string // readable list items (leafList, leafPolicies)
	// backends of a leafBackends, in config order.
	backends []schemas.Backend
}

// diffLeaves compares two sets of leaves (each unordered) and returns the
// changed fields sorted by path. old is nil for a created entry, whose fields
// carry no notes.
func diffLeaves(old, new []leaf) []Field {
	creating := old == nil
	byPath := make(map[string]*leaf, len(old))
	for i := range old {
		byPath[old[i].path] = &old[i]
	}
	var out []Field
	seen := make(map[string]bool, len(new))
	for i := range new {
		n := &new[i]
		seen[n.path] = true
		o, ok := byPath[n.path]
		switch {
		case !ok:
			f := Field{Path: n.path, New: n.show}
			if !creating {
				f.Note = note(nil, n)
			}
			out = append(out, f)
		case o.raw != n.raw:
			out = append(out, Field{Path: n.path, Old: o.show, New: n.show, Note: note(o, n)})
		}
	}
	for i := range old {
		if o := &old[i]; !seen[o.path] {
			out = append(out, Field{Path: o.path, Old: o.show, Note: note(o, nil)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// note summarizes a change of a list-like or sensitive leaf; either side may
// be nil (unset).
func note(o, n *leaf) string {
	k := leafScalar
	if o != nil {
		k = o.kind
	} else if n != nil {
		k = n.kind
	}
	switch k {
	case leafBackends:
		var ob, nb []schemas.Backend
		if o != nil {
			ob = o.backends
		}
		if n != nil {
			nb = n.backends
		}
		return backendsNote(ob, nb)
	case leafPolicies:
		return listNote(itemsOf(o), itemsOf(n), "attached", "detached")
	case leafList:
		return listNote(itemsOf(o), itemsOf(n), "added", "removed")
	case leafMasked:
		if o != nil && n != nil {
			return "changed"
		}
	}
	return ""
}

func itemsOf(l *leaf) []string {
	if l == nil {
		return nil
	}
	return l.items
}

// backendsNote renders weight shifts: "stable 90→75, canary 10→25",
// "+canary 10" for a new backend and "-legacy 20" for a removed one.
func backendsNote(old, new []schemas.Backend) string {
	ow := make(map[string]int, len(old))
	for _, b := range old {
		ow[b.Upstream] += b.Weight
	}
	nw := make(map[string]int, len(new))
	for _, b := range new {
		nw[b.Upstream] += b.Weight
	}
	var parts []string
	done := make(map[string]bool)
	for _, b := range new {
		if done[b.Upstream] {
			continue
		}
		done[b.Upstream] = true
		w, had := ow[b.Upstream]
		switch {
		case !had:
			parts = append(parts, fmt.Sprintf("+%s %d", showString(b.Upstream), nw[b.Upstream]))
		case w != nw[b.Upstream]:
			parts = append(parts, fmt.Sprintf("%s %d→%d", showString(b.Upstream), w, nw[b.Upstream]))
		}
	}
	for _, b := range old {
		if done[b.Upstream] {
			continue
		}
		done[b.Upstream] = true
		parts = append(parts, fmt.Sprintf("-%s %d", showString(b.Upstream), ow[b.Upstream]))
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, ", ")
}

// listNote names the items only on one side: "attached a, b; detached c".
func listNote(old, new []string, added, removed string) string {
	// Sets, not scans: a pull request setting a list of 40,000 hosts made
	// the scans take 13.7 s.
	inOld, inNew := make(map[string]bool, len(old)), make(map[string]bool, len(new))
	for _, s := range old {
		inOld[s] = true
	}
	for _, s := range new {
		inNew[s] = true
	}
	var plus, minus []string
	noted := make(map[string]bool)
	for _, s := range new {
		if !inOld[s] && !noted[s] {
			plus = append(plus, s)
			noted[s] = true
		}
	}
	clear(noted)
	for _, s := range old {
		if !inNew[s] && !noted[s] {
			minus = append(minus, s)
			noted[s] = true
		}
	}
	var parts []string
	if len(plus) > 0 {
		parts = append(parts, added+" "+strings.Join(plus, ", "))
	}
	if len(minus) > 0 {
		parts = append(parts, removed+" "+strings.Join(minus, ", "))
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, "; ")
}

// routeLeaves flattens a route; backends and policies get leaves of their
// own kind, header and query values under secret-looking names are masked.
func routeLeaves(r *schemas.Route) []leaf {
	c := *r
	backends, policies := c.Backends, c.Policies
	c.Backends, c.Policies = nil, nil
	out := flatten(c, routeMask)
	if len(backends) > 0 {
		parts := make([]string, len(backends))
		for i, b := range backends {
			parts[i] = fmt.Sprintf("%s %d", showString(b.Upstream), b.Weight)
		}
		raw, _ := json.Marshal(backends)
		out = append(out, leaf{path: "backends", kind: leafBackends, raw: string(raw),
			show: strings.Join(parts, ", "), backends: backends})
	}
	if len(policies) > 0 {
		items := make([]string, len(policies))
		for i, p := range policies {
			items[i] = showString(p)
		}
		out = append(out, leaf{path: "policies", kind: leafPolicies, raw: strings.Join(policies, "\x00"),
			show: "[" + strings.Join(items, ", ") + "]", items: items})
	}
	return out
}

// routeMask masks match.headers.NAME, match.query.NAME and the set/add
// values of request and response headers when NAME looks secret.
func routeMask(path []string) bool {
	if len(path) != 3 {
		return false
	}
	switch {
	case path[0] == "match" && (path[1] == "headers" || path[1] == "query"):
	case (path[0] == "requestHeaders" || path[0] == "responseHeaders") && (path[1] == "set" || path[1] == "add"):
	default:
		return false
	}
	return SecretName(path[2])
}

// withoutDefaults drops the leaves whose value equals the default at the
// same path. A nested block left with only defaults ("retries: {}") keeps
// one leaf saying so, so that enabling it still shows.
func withoutDefaults(leaves, defaults []leaf) []leaf {
	def := make(map[string]string, len(defaults))
	for _, d := range defaults {
		def[d.path] = d.raw
	}
	out := leaves[:0:0]
	kept := make(map[string]bool)
	var dropped []string
	for _, l := range leaves {
		block, nested := topBlock(l.path)
		if raw, ok := def[l.path]; !ok || raw != l.raw {
			out = append(out, l)
			kept[block] = true
		} else if nested {
			dropped = append(dropped, block)
		}
	}
	for _, block := range dropped {
		if !kept[block] {
			kept[block] = true
			out = append(out, leaf{path: block, raw: "{}", show: "(defaults)"})
		}
	}
	return out
}

// topBlock returns the first element of a field path and whether the path
// has more elements.
func topBlock(p string) (string, bool) {
	if i := strings.IndexAny(p, ".["); i > 0 {
		return p[:i], true
	}
	return p, false
}

// routeDefaults are the defaults of an empty route with the same optional
// blocks as r.
func routeDefaults(r *schemas.Route) []leaf {
	var z schemas.Route
	if r.Retries != nil {
		z.Retries = &schemas.Retries{}
	}
	c := schemas.Config{Routes: map[string]schemas.Route{"": z}}
	c.ApplyDefaults()
	z = c.Routes[""]
	return routeLeaves(&z)
}

// upstreamDefaults are the defaults of an empty upstream with the same
// optional blocks as u.
func upstreamDefaults(u *schemas.Upstream) []leaf {
	var z schemas.Upstream
	if u.HealthCheck != nil {
		z.HealthCheck = &schemas.HealthCheck{}
	}
	if u.OutlierDetection != nil {
		z.OutlierDetection = &schemas.OutlierDetection{}
	}
	if u.CircuitBreaker != nil {
		z.CircuitBreaker = &schemas.CircuitBreaker{}
	}
	if u.TLS != nil {
		z.TLS = &schemas.UpstreamTLS{}
	}
	c := schemas.Config{Upstreams: map[string]schemas.Upstream{"": z}}
	c.ApplyDefaults()
	z = c.Upstreams[""]
	return upstreamLeaves(&z)
}

// policyDefaults are the defaults of an empty policy of the same kind as p.
func policyDefaults(p *schemas.Policy) []leaf {
	z := p.Defaults()
	if z.Kind() == "" {
		return nil
	}
	return policyLeaves(&z)
}

func upstreamLeaves(u *schemas.Upstream) []leaf {
	return flatten(*u, func([]string) bool { return false })
}

func policyLeaves(p *schemas.Policy) []leaf { return flatten(*p, policyMask) }

// policyMask masks the fields of policy settings tagged secret:"value" (the
// field) or secret:"values" (each value of a map, whose keys stay visible),
// such as API key hashes and inline JWKS key material. JWT secret and JWKS
// references are not tagged: they name where a secret lives, not the
// secret.
func policyMask(path []string) bool {
	for _, m := range policySecrets {
		if len(path) == len(m) && slices.Equal(path[:len(m)-1], m[:len(m)-1]) && (m[len(m)-1] == "*" || m[len(m)-1] == path[len(path)-1]) {
			return true
		}
	}
	return false
}

// policySecrets are the masked paths of schemas.Policy, by JSON name; "*"
// stands for any map key.
var policySecrets = secretPaths(reflect.TypeFor[schemas.Policy](), nil)

// secretPaths walks the struct type t (through pointers, slices are not
// entered) and returns the paths of its fields tagged secret.
func secretPaths(t reflect.Type, at []string) [][]string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out [][]string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := append(at[:len(at):len(at)], name)
		switch f.Tag.Get("secret") {
		case "value":
			out = append(out, p)
		case "values":
			out = append(out, append(p, "*"))
		default:
			out = append(out, secretPaths(f.Type, p)...)
		}
	}
	return out
}

// secretWords mark a header, query or cookie name whose value is masked.
var secretWords = []string{"authorization", "auth", "cookie", "token", "key", "secret",
	"password", "passwd", "credential", "session", "signature"}

// SecretName reports whether a header or parameter name looks like it
// carries a secret (Authorization, Cookie, X-API-Key, access_token, …).
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// flatten turns a config value into leaves by way of its JSON form, so that
// field names match the config files. mask is asked about every node's
// path; a masked node becomes one sensitive leaf.
func flatten(v any, mask func(path []string) bool) []leaf {
	b, err := json.Marshal(v)
	if err != nil {
		// The config types always marshal; a failure here is a programming
		// error that must not hide a change, so compare the error text.
		return []leaf{{path: "(value)", raw: err.Error(), show: err.Error()}}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return []leaf{{path: "(value)", raw: err.Error(), show: err.Error()}}
	}
	var out []leaf
	walk(nil, "", tree, mask, &out)
	return out
}

func walk(path []string, dotted string, v any, mask func([]string) bool, out *[]leaf) {
	if len(path) > 0 && mask(path) {
		raw, _ := json.Marshal(v)
		*out = append(*out, leaf{path: dotted, kind: leafMasked, raw: string(raw), show: Sensitive})
		return
	}
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(append(path[:len(path):len(path)], k), joinKey(dotted, k), t[k], mask, out)
		}
	case []any:
		if len(t) == 0 {
			return
		}
		if scalars(t) {
			items := make([]string, len(t))
			raws := make([]string, len(t))
			for i, x := range t {
				items[i] = showScalar(x)
				raws[i] = rawScalar(x)
			}
			*out = append(*out, leaf{path: dotted, kind: leafList, raw: strings.Join(raws, "\x00"),
				show: "[" + strings.Join(items, ", ") + "]", items: items})
			return
		}
		for i, x := range t {
			idx := "[" + strconv.Itoa(i) + "]"
			walk(append(path[:len(path):len(path)], idx), dotted+idx, x, mask, out)
		}
	case nil:
	default:
		*out = append(*out, leaf{path: dotted, raw: rawScalar(t), show: showScalar(t)})
	}
}

func scalars(list []any) bool {
	for _, x := range list {
		switch x.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// joinKey appends a map key to a dotted path, quoting keys that are not
// plain identifiers: routes.api.match.headers["x.y"].
func joinKey(dotted, k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r == '-' || r == '_' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return dotted + "[" + strconv.Quote(k) + "]"
	case dotted == "":
		return k
	}
	return dotted + "." + k
}

func rawScalar(x any) string {
	b, _ := json.Marshal(x)
	return string(b)
}

func showScalar(x any) string {
	switch t := x.(type) {
	case string:
		return showString(redactURL(t))
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return "null"
	}
	return fmt.Sprint(x)
}

// showString returns s as is when it reads unambiguously, quoted otherwise,
// and cut to maxShown runes.
func showString(s string) string {
	if utf8.RuneCountInString(s) > maxShown {
		r := []rune(s)
		s = string(r[:maxShown]) + "…"
	}
	if s == "" || strings.ContainsAny(s, " \t,[]\"'`<>|→") || strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// redactURL hides the user info of a URL, which may hold credentials.
func redactURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	// A user name alone can be a token (https://TOKEN@host), so hide it too.
	u.User = url.User("xxxxx")
	return u.String()
}
