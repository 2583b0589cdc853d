package load

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// The memoized check (the "fast path") validates a literal entry (one part,
// from YAML or JSON) against its definition with CUE, but splits the work at
// struct boundaries and remembers what passed:
//
//   - a struct of the input is checked once per schema path and set of keys
//     by unifying it whole with its definition (closedness, required
//     fields, pattern constraints on keys); later structs with the same
//     keys check each field against the field's own definition instead;
//   - any other value (a scalar, a list, a struct under a definition that
//     is not a plain struct) is checked once per schema path and JSON form;
//     scalars seen for the first time (each route's path) wait until the
//     end of the chunk and are checked together, one evaluation per schema
//     path (flush), and an entry counts as passed only when its scalars do.
//
// This is exact as long as a definition relates no two of its fields, which
// config.cue guarantees (rules between fields are checked in Go). Most
// fields of a large config repeat (hosts, methods, backends, timeouts), so
// CUE evaluates a fraction of the input. The JSON written along the way is
// decoded into the Go types, so the evaluated value is never marshaled.
// Anything the fast path does not handle, and every failure, goes to the
// full evaluation (entry.validate), whose diagnostics are the only ones
// reported.

// passed records the checks that succeeded during one load, keyed by the
// schema path (the definition, then each field name as a JSON string) and
// either "=" and the value's JSON or "{" and the field names. It holds only
// strings, so it outlives the CUE contexts that computed it and is shared
// by the workers.
type passed struct {
	mu sync.RWMutex
	ok map[string]struct{}
}

func newPassed() *passed { return &passed{ok: make(map[string]struct{})} }

func (p *passed) has(key []byte) bool {
	p.mu.RLock()
	_, ok := p.ok[string(key)]
	p.mu.RUnlock()
	return ok
}

func (p *passed) add(key []byte) {
	p.mu.Lock()
	p.ok[string(key)] = struct{}{}
	p.mu.Unlock()
}

// schemaNode is a definition at a schema path, looked up once per context.
type schemaNode struct {
	v cue.Value
	// plain is set when v is a struct that is not a disjunction, so that
	// its fields can be checked one by one.
	plain  bool
	fields map[string]*schemaNode
	// pattern is {[string]: v}, to check scalars in batches.
	pattern    cue.Value
	patternSet bool
}

// fastChecker validates entries of one CUE context.
type fastChecker struct {
	ctx    *cue.Context
	roots  []*schemaNode // by section
	passed *passed
	key    []byte // scratch for memo keys
	out    []byte // JSON of the entry being checked
	evals  int    // CUE evaluations made in ctx
	// pending are scalars of the entries checked since the last flush.
	pending []pendingCheck
}

func newFastChecker(ctx *cue.Context, defs []cue.Value, p *passed) *fastChecker {
	f := &fastChecker{ctx: ctx, passed: p}
	for _, d := range defs {
		f.roots = append(f.roots, newSchemaNode(d))
	}
	return f
}

func newSchemaNode(v cue.Value) *schemaNode {
	n := &schemaNode{v: v}
	if v.IncompleteKind() == cue.StructKind {
		op, _ := v.Expr()
		n.plain = op != cue.OrOp
	}
	return n
}

func (n *schemaNode) field(name string) *schemaNode {
	if c, ok := n.fields[name]; ok {
		return c
	}
	if n.fields == nil {
		n.fields = make(map[string]*schemaNode)
	}
	var c *schemaNode
	if v := n.v.LookupPath(cue.MakePath(cue.Str(name).Optional())); v.Exists() {
		c = newSchemaNode(v)
	}
	n.fields[name] = c
	return c
}

// check validates the single literal part x of an entry of section sec and
// returns its JSON form, or ok false when the full evaluation must decide.
// The returned bytes are valid until the next call.
func (f *fastChecker) check(sec int, x ast.Expr) ([]byte, bool) {
	f.out = f.out[:0]
	return f.out, f.value(f.roots[sec], sections[sec].def, x, true)
}

// value appends the JSON of x to f.out and, when validate is set, checks
// x against n.
func (f *fastChecker) value(n *schemaNode, spath string, x ast.Expr, validate bool) bool {
	start := len(f.out)
	if st, ok := x.(*ast.StructLit); ok && validate && n.plain {
		return f.structValue(n, spath, st)
	}
	var ok bool
	f.out, ok = appendJSON(f.out, x)
	if !ok || !validate {
		return ok
	}
	f.key = append(append(append(f.key[:0], spath...), '='), f.out[start:]...)
	if f.passed.has(f.key) {
		return true
	}
	switch x.(type) {
	case *ast.BasicLit, *ast.UnaryExpr:
		// A scalar seen for the first time, such as the path of each
		// route: checked later with others of its schema path (flush).
		f.pending = append(f.pending, pendingCheck{n: n, x: x, key: string(f.key)})
		return true
	}
	if !f.unifies(n, x) {
		return false
	}
	f.passed.add(f.key)
	return true
}

// pendingCheck is a scalar whose check was deferred to flush.
type pendingCheck struct {
	n   *schemaNode
	x   ast.Expr
	key string
}

// flush checks the pending scalars, one CUE evaluation per schema path
// (a struct of all of them unified with a pattern constraint of the
// definition, about half the cost of one at a time), and returns whether
// each passed. Only when a batch fails are its scalars checked one by one.
func (f *fastChecker) flush() []bool {
	ok := make([]bool, len(f.pending))
	groups := make(map[*schemaNode][]int)
	var order []*schemaNode
	for i, p := range f.pending {
		if groups[p.n] == nil {
			order = append(order, p.n)
		}
		groups[p.n] = append(groups[p.n], i)
	}
	for _, n := range order {
		idx := groups[n]
		if len(idx) > 1 && f.unifiesAll(n, idx) {
			for _, i := range idx {
				ok[i] = true
				f.passed.add([]byte(f.pending[i].key))
			}
			continue
		}
		for _, i := range idx {
			if ok[i] = f.unifies(n, f.pending[i].x); ok[i] {
				f.passed.add([]byte(f.pending[i].key))
			}
		}
	}
	f.pending = f.pending[:0]
	return ok
}

// unifiesAll reports whether all pending scalars idx pass n.
func (f *fastChecker) unifiesAll(n *schemaNode, idx []int) bool {
	f.evals++
	if !n.patternSet {
		n.patternSet = true
		n.pattern = f.ctx.CompileString("{}").FillPath(cue.MakePath(cue.AnyString), n.v)
	}
	if n.pattern.Err() != nil {
		return false
	}
	st := &ast.StructLit{Elts: make([]ast.Decl, len(idx))}
	for j, i := range idx {
		st.Elts[j] = &ast.Field{Label: ast.NewString(strconv.Itoa(j)), Value: f.pending[i].x}
	}
	v := f.ctx.BuildExpr(st)
	if v.Err() != nil {
		return false
	}
	return n.pattern.Unify(v).Validate(cue.Concrete(true)) == nil
}

// structValue checks a struct under a plain struct definition: whole the
// first time its keys are seen, field by field after that.
func (f *fastChecker) structValue(n *schemaNode, spath string, st *ast.StructLit) bool {
	f.key = append(append(f.key[:0], spath...), '{')
	for _, el := range st.Elts {
		fl, ok := el.(*ast.Field)
		if !ok || fl.Constraint != token.ILLEGAL {
			return false
		}
		name, _, err := ast.LabelName(fl.Label)
		if err != nil {
			return false
		}
		f.key = appendJSONString(f.key, name)
		f.key = append(f.key, ',')
	}
	known := f.passed.has(f.key)
	if !known {
		// Keep the key: the fields below overwrite f.key.
		keyset := string(f.key)
		if !f.fields(n, spath, st, false) {
			return false
		}
		if !f.unifies(n, st) {
			return false
		}
		f.passed.add([]byte(keyset))
		return true
	}
	return f.fields(n, spath, st, true)
}

// fields appends the JSON object of st, checking each field against its
// definition in n when validate is set.
func (f *fastChecker) fields(n *schemaNode, spath string, st *ast.StructLit, validate bool) bool {
	f.out = append(f.out, '{')
	for i, el := range st.Elts {
		fl, ok := el.(*ast.Field)
		if !ok || fl.Constraint != token.ILLEGAL {
			return false
		}
		name, _, err := ast.LabelName(fl.Label)
		if err != nil {
			return false
		}
		if i > 0 {
			f.out = append(f.out, ',')
		}
		f.out = appendJSONString(f.out, name)
		f.out = append(f.out, ':')
		var (
			c     *schemaNode
			cpath string
		)
		if validate {
			if c = n.field(name); c == nil {
				return false
			}
			cpath = spath + string(appendJSONString([]byte{'.'}, name))
		}
		if !f.value(c, cpath, fl.Value, validate) {
			return false
		}
	}
	f.out = append(f.out, '}')
	return true
}

// unifies reports whether x, as a CUE value, unifies with n into a valid,
// concrete value.
func (f *fastChecker) unifies(n *schemaNode, x ast.Expr) bool {
	f.evals++
	v := f.ctx.BuildExpr(x)
	if v.Err() != nil {
		return false
	}
	return n.v.Unify(v).Validate(cue.Concrete(true)) == nil
}

// appendJSON appends the JSON form of x, a value as CUE's YAML and JSON
// decoders write it, or returns false for anything else (bytes, special
// floats, numbers not written as JSON writes them, expressions).
func appendJSON(b []byte, x ast.Expr) ([]byte, bool) {
	switch x := x.(type) {
	case *ast.StructLit:
		b = append(b, '{')
		for i, el := range x.Elts {
			fl, ok := el.(*ast.Field)
			if !ok || fl.Constraint != token.ILLEGAL {
				return b, false
			}
			name, _, err := ast.LabelName(fl.Label)
			if err != nil {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, name)
			b = append(b, ':')
			if b, ok = appendJSON(b, fl.Value); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case *ast.ListLit:
		b = append(b, '[')
		for i, el := range x.Elts {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSON(b, el); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case *ast.UnaryExpr:
		lit, ok := x.X.(*ast.BasicLit)
		if x.Op != token.SUB || !ok || (lit.Kind != token.INT && lit.Kind != token.FLOAT) {
			return b, false
		}
		return appendJSON(append(b, '-'), lit)
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			if !strings.HasPrefix(x.Value, `"`) {
				return b, false // a bytes literal
			}
			s, err := literal.Unquote(x.Value)
			if err != nil || !utf8.ValidString(s) {
				return b, false
			}
			return appendJSONString(b, s), true
		case token.INT, token.FLOAT:
			if !jsonNumber(x.Value) {
				return b, false
			}
			return append(b, x.Value...), true
		case token.TRUE, token.FALSE, token.NULL:
			return append(b, x.Value...), true
		}
	}
	return b, false
}

// jsonNumber reports whether s is an unsigned number in JSON syntax.
func jsonNumber(s string) bool {
	i := 0
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if strings.HasPrefix(s, "0") {
		i = 1
	} else if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// decodeAll validates and decodes the entries chunk (indices of entries
// and out) on the fast path and returns those that the full evaluation
// must decide: entries of several parts and those the fast path refused.
func (f *fastChecker) decodeAll(entries []*entry, chunk []int, out []decoded) (slow []int) {
	type held struct{ i, from, to int }
	var hold []held
	for _, i := range chunk {
		e := entries[i]
		from := len(f.pending)
		if len(e.parts) != 1 || !f.decode(e, &out[i]) {
			f.pending = f.pending[:from]
			slow = append(slow, i)
			continue
		}
		hold = append(hold, held{i, from, len(f.pending)})
	}
	passed := f.flush()
	for _, h := range hold {
		for k := h.from; k < h.to; k++ {
			if !passed[k] {
				out[h.i] = decoded{}
				slow = append(slow, h.i)
				break
			}
		}
	}
	return slow
}

// decode validates e, an entry of one literal part, on the fast path and
// decodes it into out; false means the full evaluation must decide. The
// scalars it left pending must pass flush too.
func (f *fastChecker) decode(e *entry, out *decoded) bool {
	js, ok := f.check(e.section, e.parts[0].expr)
	if !ok {
		return false
	}
	if err := out.unmarshal(sections[e.section].name, js); err != nil {
		*out = decoded{}
		return false
	}
	return true
}
