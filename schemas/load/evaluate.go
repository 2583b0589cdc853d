package load

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"sort"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/token"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// The top-level sections of a config document and their CUE definitions.
// A single section is one struct (the whole section is one entry, named
// ""); the others map names to entries.
var sections = []struct {
	name, def string
	single    bool
}{
	{"upstreams", "#Upstream", false},
	{"routes", "#Route", false},
	{"policies", "#Policy", false},
	{"safety", "#Safety", true},
}

// sectionNames are the names of sections, for messages.
var sectionNames = []string{"upstreams", "routes", "policies", "safety"}

// path returns the field path of e: "routes.shop", or "safety" for the
// entry of a single section.
func (e *entry) path() []string {
	if sections[e.section].single {
		return []string{sections[e.section].name}
	}
	return []string{sections[e.section].name, e.name}
}

func sectionIndex(name string) int {
	for i, s := range sections {
		if s.name == name {
			return i
		}
	}
	return -1
}

// entry is one named upstream, route or policy, with every place that
// defines part of it. Most entries are written once.
type entry struct {
	section int
	name    string
	parts   []part
}

// part is one definition of an entry: a literal from a YAML or JSON file, or
// a value of an evaluated CUE file.
type part struct {
	expr ast.Expr
	val  cue.Value
}

// evaluate validates the sources entry by entry: each named upstream, route
// and policy is unified with the other places that define it and with its
// schema definition, then decoded. Evaluating small values one at a time
// instead of one document of the whole config keeps CUE's cost linear and
// its memory bounded by the largest entry (about ten times faster at 10,000
// routes than unifying the whole document with #Config). The document level
// (known sections, names) is checked here in Go.
func evaluate(stop context.Context, sources []source) (*schemas.Config, []schemas.Diagnostic, error) {
	ctx, defs := newContext()
	idx := newPosIndex(sources)

	entries, diags := collect(ctx, sources, idx)
	if len(diags) > 0 {
		return nil, diags, nil
	}
	cfg, diags := validateEntries(stop, ctx, defs, entries, idx)
	if err := stop.Err(); err != nil {
		return nil, nil, err
	}
	if len(diags) > 0 {
		sortDiagnostics(diags)
		return nil, diags, nil
	}
	if diags := check(cfg); len(diags) > 0 {
		return nil, idx.locate(diags), nil
	}
	cfg.ApplyDefaults()
	return cfg, nil, nil
}

// newContext returns a fresh CUE context with the schema compiled in it
// and the definitions of the sections, in the order of sections.
func newContext() (*cue.Context, []cue.Value) {
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(schemas.CUESchema, cue.Filename(schemas.CUESchemaFile))
	if err := schema.Err(); err != nil {
		// The embedded schema is compiled by the tests; this is a build defect.
		panic(fmt.Sprintf("compiling the embedded CUE schema: %v", err))
	}
	defs := make([]cue.Value, len(sections))
	for i, s := range sections {
		defs[i] = schema.LookupPath(cue.ParsePath(s.def))
	}
	return ctx, defs
}

// chunkSize is the number of entries handed to a worker at a time.
// A CUE context keeps every value built in it until it is dropped, so a
// worker replaces its context after contextBudget evaluations, counting a
// full evaluation of an entry (about 50 KB at most) as fastPerFull
// evaluations of the fast path (a field or a value): memory stays bounded
// by the budget, not by the config, and a config that validates on the
// fast path compiles the schema about once per worker.
const (
	chunkSize     = 256
	contextBudget = 256 * fastPerFull
	fastPerFull   = 16
)

// decoded is the outcome of validating one entry.
type decoded struct {
	upstream schemas.Upstream
	route    schemas.Route
	policy   schemas.Policy
	safety   schemas.Safety
	diags    []schemas.Diagnostic
}

// unmarshal decodes the JSON of one entry of section into its Go type.
func (d *decoded) unmarshal(section string, js []byte) error {
	switch section {
	case "upstreams":
		return json.Unmarshal(js, &d.upstream)
	case "routes":
		return json.Unmarshal(js, &d.route)
	case "policies":
		return json.Unmarshal(js, &d.policy)
	case "safety":
		return json.Unmarshal(js, &d.safety)
	}
	return fmt.Errorf("no Go type for section %q", section)
}

// validateEntries validates and decodes every entry. Entries written only
// in YAML or JSON are validated in chunks by up to GOMAXPROCS workers, each
// chunk in a context of its own, on the memoized path of memocheck.go when they have
// one part and with the full evaluation otherwise or when the fast path
// refuses them; entries with a part from a CUE file are values of ctx and
// are validated there.
// validateEntries validates every entry, stopping early (its result then
// incomplete) when stop ends: between entries, and between chunks.
func validateEntries(stop context.Context, ctx *cue.Context, defs []cue.Value, entries []*entry, idx *posIndex) (*schemas.Config, []schemas.Diagnostic) {
	out := make([]decoded, len(entries))
	var literal []int
	for i, e := range entries {
		if e.literal() {
			literal = append(literal, i)
			continue
		}
		if stop.Err() != nil {
			return nil, nil
		}
		e.validate(ctx, defs[e.section], &out[i], idx)
	}
	chunks := make(chan []int)
	memo := newPassed()
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), (len(literal)+chunkSize-1)/chunkSize, 8)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				cctx  *cue.Context
				cdefs []cue.Value
				fc    *fastChecker
				spent int
			)
			renew := func() {
				cctx, cdefs = newContext()
				fc = newFastChecker(cctx, cdefs, memo)
				spent = 0
			}
			for chunk := range chunks {
				if stop.Err() != nil {
					continue // drain: the caller stops sending
				}
				if cctx == nil || spent+fc.evals > contextBudget {
					renew()
				}
				for _, i := range fc.decodeAll(entries, chunk, out) {
					if spent+fc.evals > contextBudget {
						renew()
					}
					entries[i].validate(cctx, cdefs[entries[i].section], &out[i], idx)
					spent += fastPerFull
				}
			}
		}()
	}
	for start := 0; start < len(literal) && stop.Err() == nil; start += chunkSize {
		chunks <- literal[start:min(start+chunkSize, len(literal))]
	}
	close(chunks)
	wg.Wait()
	if stop.Err() != nil {
		return nil, nil
	}

	cfg := &schemas.Config{
		Upstreams: make(map[string]schemas.Upstream),
		Routes:    make(map[string]schemas.Route),
		Policies:  make(map[string]schemas.Policy),
	}
	var diags []schemas.Diagnostic
	for i, e := range entries {
		d := &out[i]
		if len(d.diags) > 0 {
			diags = append(diags, d.diags...)
			continue
		}
		switch sections[e.section].name {
		case "upstreams":
			cfg.Upstreams[e.name] = d.upstream
		case "routes":
			cfg.Routes[e.name] = d.route
		case "policies":
			cfg.Policies[e.name] = d.policy
		case "safety":
			s := d.safety
			cfg.Safety = &s
		}
	}
	return cfg, diags
}

// literal reports whether every part of e comes from YAML or JSON.
func (e *entry) literal() bool {
	for _, p := range e.parts {
		if p.expr == nil {
			return false
		}
	}
	return true
}

// collect splits every source into entries keyed by section and name.
func collect(ctx *cue.Context, sources []source, idx *posIndex) ([]*entry, []schemas.Diagnostic) {
	byKey := make(map[[2]string]*entry)
	var (
		order []*entry
		diags []schemas.Diagnostic
	)
	add := func(sec int, name string, p part) {
		k := [2]string{sections[sec].name, name}
		e := byKey[k]
		if e == nil {
			e = &entry{section: sec, name: name}
			byKey[k] = e
			order = append(order, e)
		}
		e.parts = append(e.parts, p)
	}
	unknownSection := func(file string, pos token.Pos, name string) {
		msg := fmt.Sprintf("unknown top-level field %q: a config has upstreams, routes, policies and safety", name)
		if s := rules.Closest(name, sectionNames); s != "" {
			msg = fmt.Sprintf("unknown top-level field %q (did you mean %q?)", name, s)
		}
		diags = append(diags, schemas.Diagnostic{File: file, Line: pos.Line(), Column: pos.Column(), Path: formatPath([]string{name}), Message: msg})
	}
	for _, s := range sources {
		switch n := s.node.(type) {
		case *ast.File:
			v := ctx.BuildFile(n)
			if err := v.Err(); err != nil {
				diags = append(diags, cueDiags(err, idx, nil)...)
				continue
			}
			it, err := v.Fields()
			if err != nil {
				diags = append(diags, cueDiags(err, idx, nil)...)
				continue
			}
			for it.Next() {
				sec := sectionIndex(it.Selector().String())
				if sec < 0 {
					unknownSection(s.file, it.Value().Pos(), it.Selector().String())
					continue
				}
				if sections[sec].single {
					add(sec, "", part{val: it.Value()})
					continue
				}
				names, err := it.Value().Fields()
				if err != nil {
					diags = append(diags, cueDiags(err, idx, []string{sections[sec].name})...)
					continue
				}
				for names.Next() {
					add(sec, names.Selector().Unquoted(), part{val: names.Value()})
				}
			}
		case *ast.StructLit:
			for _, el := range n.Elts {
				f, ok := el.(*ast.Field)
				if !ok {
					continue
				}
				secName, _, err := ast.LabelName(f.Label)
				if err != nil {
					continue
				}
				sec := sectionIndex(secName)
				if sec < 0 {
					unknownSection(s.file, f.Label.Pos(), secName)
					continue
				}
				switch x := f.Value.(type) {
				case *ast.StructLit:
					if sections[sec].single {
						add(sec, "", part{expr: x})
						continue
					}
					for _, el := range x.Elts {
						nf, ok := el.(*ast.Field)
						if !ok {
							continue
						}
						name, _, err := ast.LabelName(nf.Label)
						if err != nil {
							continue
						}
						add(sec, name, part{expr: nf.Value})
					}
				default:
					if isNull(x) {
						continue // "routes:" with nothing under it
					}
					pos := f.Value.Pos()
					what := "a mapping from names to definitions"
					if sections[sec].single {
						what = "a mapping of settings"
					}
					diags = append(diags, schemas.Diagnostic{File: s.file, Line: pos.Line(), Column: pos.Column(), Path: secName,
						Message: fmt.Sprintf("%s must be %s", secName, what)})
				}
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].section != order[j].section {
			return order[i].section < order[j].section
		}
		return order[i].name < order[j].name
	})
	return order, diags
}

// validate unifies the parts of e with def, validates the result and
// decodes it into out.
func (e *entry) validate(ctx *cue.Context, def cue.Value, out *decoded, idx *posIndex) {
	at := e.path()
	var data cue.Value
	for i, p := range e.parts {
		pv := p.val
		if p.expr != nil {
			pv = ctx.BuildExpr(p.expr)
		}
		if i == 0 {
			data = pv
		} else {
			data = data.Unify(pv)
		}
	}
	if len(e.parts) > 1 {
		// Conflicts between places first: their message names both.
		if err := data.Validate(); err != nil {
			out.diags = cueDiags(err, idx, at)
			return
		}
	}
	v := def.Unify(data)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		out.diags = cueDiags(err, idx, at)
		return
	}
	// MarshalJSON of the evaluated value and encoding/json are several
	// times faster than Value.Decode, and the Go types read their own JSON.
	// Optional fields of the schema that the input leaves out are not
	// marshaled.
	js, err := v.MarshalJSON()
	if err != nil {
		out.diags = cueDiags(err, idx, at)
		return
	}
	if err := out.unmarshal(sections[e.section].name, js); err != nil {
		// The schema admitted what the Go types refuse: a schema defect.
		out.diags = []schemas.Diagnostic{{Path: formatPath(at), Message: fmt.Sprintf("decoding validated config: %v", err)}}
	}
}
