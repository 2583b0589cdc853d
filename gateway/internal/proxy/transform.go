package proxy

import (
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/gateway/internal/router"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// pathRewrite is the compiled form of schemas.Rewrite's path fields.
type pathRewrite struct {
	strip   string
	add     string
	re      *regexp.Regexp
	repl    string
	tmpl    []tmplPart // nil: no whole-path replacement
	hasTmpl bool
}

// tmplPart is a literal or, when param is true, a parameter name.
type tmplPart struct {
	s     string
	param bool
}

// apply returns the new path for p, a path the gateway has normalized and
// routed. stripPrefix removes whole segments only ("/api" strips "/api" and
// "/api/x", never "/apiary"). The result is normalized again (router.CleanPath),
// so that "." segments and repeated slashes a rewrite produced never reach
// the upstream. ok is false when the result has a ".." segment (or a dot
// segment with ';' parameters, which Tomcat and Jetty read as one): a
// rewrite built from client input that climbs out of the path the route's
// policies were chosen for is refused, not resolved.
func (pr *pathRewrite) apply(p string, params map[string]string) (string, bool) {
	if pr.strip != "" && stripsSegment(p, pr.strip) {
		p = p[len(pr.strip):]
		if p == "" || p[0] != '/' {
			p = "/" + p
		}
	}
	if pr.add != "" {
		p = joinPath(pr.add, p)
	}
	if pr.re != nil {
		p = pr.re.ReplaceAllString(p, pr.repl)
	}
	if pr.hasTmpl {
		var b strings.Builder
		for _, part := range pr.tmpl {
			if part.param {
				b.WriteString(params[part.s])
			} else {
				b.WriteString(part.s)
			}
		}
		p = b.String()
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if climbs(p) {
		return p, false
	}
	return router.CleanPath(p)
}

// stripsSegment reports whether prefix covers whole leading segments of p:
// p is prefix, or continues after it with "/" (or prefix ends in "/").
func stripsSegment(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || prefix[len(prefix)-1] == '/' || p[len(prefix)] == '/'
}

// climbs reports whether path p has a ".." segment, or a "." or ".."
// segment followed by ';' parameters.
func climbs(p string) bool {
	if !strings.Contains(p, "/.") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		name, _, params := strings.Cut(seg, ";")
		if name == ".." || params && name == "." {
			return true
		}
	}
	return false
}

func joinPath(a, b string) string {
	a = strings.TrimSuffix(a, "/")
	if b == "" || b == "/" {
		if a == "" {
			return "/"
		}
		return a + "/"
	}
	if b[0] != '/' {
		b = "/" + b
	}
	return a + b
}

// templateParts splits a rewrite path that rules.RewriteTemplate accepted
// into literals and {name} parameters.
func templateParts(s string) []tmplPart {
	var parts []tmplPart
	for s != "" {
		i := strings.IndexByte(s, '{')
		j := strings.IndexByte(s, '}')
		if i < 0 || j < i {
			parts = append(parts, tmplPart{s: s})
			break
		}
		if i > 0 {
			parts = append(parts, tmplPart{s: s[:i]})
		}
		parts = append(parts, tmplPart{s: s[i+1 : j], param: true})
		s = s[j+1:]
	}
	return parts
}

// compileRewrite compiles r. The rules of a rewrite (a regex within
// bounds, parameters the match defines) are rules.Route's, checked by
// NewRoute; compileRewrite reports only what the compiled form needs.
// diag reports problems under path.
func compileRewrite(r *schemas.Rewrite, diag func(path, format string, args ...any)) *pathRewrite {
	if r == nil || (r.StripPrefix == "" && r.AddPrefix == "" && r.Regex == nil && r.Path == "") {
		return nil
	}
	pr := &pathRewrite{strip: r.StripPrefix, add: r.AddPrefix}
	if pr.strip != "" && pr.strip[0] != '/' {
		diag(".rewrite.stripPrefix", "stripPrefix %q must start with /", pr.strip)
	}
	if pr.add != "" && pr.add[0] != '/' {
		diag(".rewrite.addPrefix", "addPrefix %q must start with /", pr.add)
	}
	if r.Regex != nil && rules.Regex(r.Regex.Pattern) == nil {
		re, err := regexp.Compile(r.Regex.Pattern)
		if err != nil {
			diag(".rewrite.regex.pattern", "regex does not compile: %v", err)
		}
		pr.re, pr.repl = re, r.Regex.Replacement
	}
	if r.Path != "" {
		pr.tmpl, pr.hasTmpl = templateParts(r.Path), true
	}
	return pr
}

// headerOps is the compiled form of schemas.HeaderOps with canonical keys.
type headerOps struct {
	remove []string
	set    []kv
	add    []kv
	// drop is remove and the names of set: every spelling of each goes
	// first, in one pass over the header.
	drop []string
}

// kv is one header to set or add. vs is v as a value list, made once:
// set shares it with every request instead of allocating one; its capacity
// is 1, so that an append to it copies.
type kv struct {
	k, v string
	vs   []string
}

func compileHeaderOps(h *schemas.HeaderOps, path string, diag func(path, format string, args ...any)) *headerOps {
	if h == nil || (len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0) {
		return nil
	}
	ops := &headerOps{}
	check := func(field, name, value string) bool {
		if !rules.Token(name) {
			diag(path+"."+field, "%q is not a valid header name", name)
			return false
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			diag(path+"."+field, "value of %s must not contain CR, LF or NUL", name)
			return false
		}
		return true
	}
	for _, name := range h.Remove {
		if check("remove", name, "") {
			ops.remove = append(ops.remove, textproto.CanonicalMIMEHeaderKey(name))
		}
	}
	for _, m := range []struct {
		field string
		src   map[string]string
		dst   *[]kv
	}{{"set", h.Set, &ops.set}, {"add", h.Add, &ops.add}} {
		for name, v := range m.src {
			if check(m.field, name, v) {
				*m.dst = append(*m.dst, kv{k: textproto.CanonicalMIMEHeaderKey(name), v: v, vs: []string{v}[:1:1]})
			}
		}
		sort.Slice(*m.dst, func(i, j int) bool { return (*m.dst)[i].k < (*m.dst)[j].k })
	}
	// Every set removes each spelling of its name, so of two set names
	// that are spellings of one another (X-Foo, X_foo) only the later, in
	// key order, is ever left: the earlier is dropped here, and apply can
	// remove every name's spellings in one pass before it sets the rest.
	kept := ops.set[:0]
	for i, e := range ops.set {
		if !slices.ContainsFunc(ops.set[i+1:], func(later kv) bool { return headers.SameCGIName(e.k, later.k) }) {
			kept = append(kept, e)
		}
	}
	ops.set = kept
	ops.drop = append(ops.drop, ops.remove...)
	for _, e := range ops.set {
		ops.drop = append(ops.drop, e.k)
	}
	return ops
}

func (o *headerOps) apply(h http.Header) {
	if o == nil {
		return
	}
	// Removed and set headers lose their other spellings too ("X_Tenant"
	// for "X-Tenant"), which CGI-style servers read under the same name.
	headers.DeleteAllOf(h, o.drop)
	for _, e := range o.set {
		h[e.k] = e.vs
	}
	for _, e := range o.add {
		h[e.k] = append(h[e.k], e.v)
	}
}
