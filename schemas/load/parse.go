package load

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"

	"github.com/gitgate/gitgate/schemas"
)

// source is one parsed input: a file yields one source per YAML document.
type source struct {
	file string
	node ast.Node // *ast.File for CUE, ast.Expr for YAML and JSON
}

// parse turns one file into sources, or diagnostics when it cannot be read.
func parse(f File) ([]source, []schemas.Diagnostic) {
	data := bytes.TrimPrefix(f.Data, []byte("\xef\xbb\xbf"))
	ext := strings.ToLower(path.Ext(f.Path))
	if d := prescan(f.Path, data, ext == ".yaml" || ext == ".yml"); d != nil {
		return nil, []schemas.Diagnostic{*d}
	}
	var out []source
	switch ext {
	case ".yaml", ".yml":
		dec := cueyaml.NewDecoder(f.Path, bytes.NewReader(data))
		for {
			expr, err := dec.Extract()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, syntaxDiags(f.Path, "YAML", err)
			}
			if isNull(expr) {
				continue // an empty document, such as after a trailing "---"
			}
			out = append(out, source{file: f.Path, node: expr})
		}
	case ".json":
		expr, err := cuejson.Extract(f.Path, data)
		if err != nil {
			return nil, syntaxDiags(f.Path, "JSON", err)
		}
		out = append(out, source{file: f.Path, node: expr})
	case ".cue":
		file, err := parser.ParseFile(f.Path, data, parser.ParseComments)
		if err != nil {
			return nil, syntaxDiags(f.Path, "CUE", err)
		}
		return []source{{file: f.Path, node: file}}, nil
	}
	var diags []schemas.Diagnostic
	for _, s := range out {
		expr, _ := s.node.(ast.Expr)
		st, ok := expr.(*ast.StructLit)
		if !ok {
			pos := expr.Pos()
			diags = append(diags, schemas.Diagnostic{File: f.Path, Line: pos.Line(), Column: pos.Column(),
				Message: "a config document must be a mapping with upstreams, routes or policies"})
			continue
		}
		diags = append(diags, duplicateKeys(f.Path, st, nil)...)
	}
	return out, diags
}

func isNull(x ast.Expr) bool {
	lit, ok := x.(*ast.BasicLit)
	return ok && lit.Kind == token.NULL
}

// syntaxDiags turns parser errors into diagnostics. YAML errors carry a line
// but no column (yaml.v3 gives none); the column is then left out rather
// than invented.
func syntaxDiags(file, lang string, err error) []schemas.Diagnostic {
	var diags []schemas.Diagnostic
	for _, e := range errors.Errors(err) {
		d := schemas.Diagnostic{File: file}
		if pos := e.Position(); pos.IsValid() {
			d.Line, d.Column = pos.Line(), pos.Column()
		}
		msg := e.Error()
		if u := errors.Unwrap(e); u != nil && u != error(e) {
			msg = u.Error() // "invalid JSON for file ...: <cause>" says the file twice
		}
		msg, line := stripLocation(msg)
		if d.Line == 0 {
			d.Line = line
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		d.Message = lang + " error: " + msg
		diags = append(diags, d)
	}
	if len(diags) == 0 {
		diags = append(diags, schemas.Diagnostic{File: file, Message: lang + " error: " + err.Error()})
	}
	return diags
}

// stripLocation removes a leading "file:line:" or "file:line:col:" that
// parsers put in their messages, returning the rest and the line.
func stripLocation(msg string) (string, int) {
	parts := strings.SplitN(msg, ":", 4)
	if len(parts) < 3 {
		return msg, 0
	}
	line, err := strconv.Atoi(parts[1])
	if err != nil {
		return msg, 0
	}
	rest := strings.Join(parts[2:], ":")
	if len(parts) == 4 {
		if _, err := strconv.Atoi(parts[2]); err == nil {
			rest = parts[3]
		}
	}
	return strings.TrimSpace(rest), line
}

// Bounds on the shape of a YAML or JSON document, checked before CUE sees
// it. CUE's unification of a list or a mapping costs time quadratic in its
// length (a list of 50,000 one-letter hosts, 100 KB, took 9.8 s; a 1 MiB
// file about 19 minutes), and a key is repeated in the path of every
// diagnostic under it (a 400 KB route name over thousands of problems took
// gigabytes). The config's sections (routes, upstreams, policies) may hold
// any number of entries; the lists and mappings inside an entry, and the
// entry as a whole, may not.
const (
	// maxKeyBytes bounds every key: names, header names, policy keys.
	maxKeyBytes = 256
	// maxItems bounds the elements of a list and the keys of a mapping
	// inside a route, upstream or policy (hosts, targets, API keys,
	// address ranges, header sets).
	maxItems = 10000
	// maxEntryNodes bounds the keys and list elements of one route,
	// upstream or policy, all levels together: CUE gathers the errors of
	// a subtree in time quadratic in their number, and one unknown field
	// holding 99,000 keys nested deep (a 1 MiB file) took 28.7 s.
	maxEntryNodes = 20000
)

// countNodes returns the keys and list elements of x, all levels, counting
// no further than limit+1.
func countNodes(x ast.Expr, limit int) int {
	n := 0
	var walk func(ast.Expr) bool
	walk = func(x ast.Expr) bool {
		switch x := x.(type) {
		case *ast.StructLit:
			for _, el := range x.Elts {
				f, ok := el.(*ast.Field)
				if !ok {
					continue
				}
				if n++; n > limit || !walk(f.Value) {
					return false
				}
			}
		case *ast.ListLit:
			for _, el := range x.Elts {
				if n++; n > limit || !walk(el) {
					return false
				}
			}
		}
		return true
	}
	walk(x)
	return n
}

// duplicateKeys reports keys written twice in one mapping of a YAML or JSON
// document (CUE would silently unify them), naming the first occurrence,
// and what breaks the shape bounds (maxKeyBytes, maxItems, maxEntryNodes).
func duplicateKeys(file string, st *ast.StructLit, at []string) []schemas.Diagnostic {
	if d := tooMany(file, st.Pos(), "mapping", "keys", len(st.Elts), at); d != nil {
		return []schemas.Diagnostic{*d}
	}
	var diags []schemas.Diagnostic
	seen := make(map[string]token.Pos, len(st.Elts))
	for _, el := range st.Elts {
		field, ok := el.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := ast.LabelName(field.Label)
		if err != nil {
			continue
		}
		pos := field.Label.Pos()
		if len(name) > maxKeyBytes {
			diags = append(diags, schemas.Diagnostic{File: file, Line: pos.Line(), Column: pos.Column(),
				Path: formatPath(at), Message: fmt.Sprintf("a key of %d bytes (%q…): keys are at most %d bytes", len(name), name[:32], maxKeyBytes)})
			continue
		}
		p := append(at[:len(at):len(at)], name)
		if len(at) == 1 && countNodes(field.Value, maxEntryNodes) > maxEntryNodes {
			// An entry of a section: a route, an upstream, a policy.
			diags = append(diags, schemas.Diagnostic{File: file, Line: pos.Line(), Column: pos.Column(),
				Path: formatPath(p), Message: fmt.Sprintf("more than %d keys and list elements in one entry: at most %d", maxEntryNodes, maxEntryNodes)})
			continue
		}
		if first, dup := seen[name]; dup {
			diags = append(diags, schemas.Diagnostic{File: file, Line: pos.Line(), Column: pos.Column(),
				Path: formatPath(p), Message: fmt.Sprintf("duplicate key %q (first at line %d): remove one", name, first.Line())})
		} else {
			seen[name] = pos
		}
		diags = append(diags, duplicateKeysIn(file, field.Value, p)...)
	}
	return diags
}

// tooMany reports a list or mapping of n items inside a config entry (at
// is at least two deep: a section and an entry's name) over maxItems.
func tooMany(file string, pos token.Pos, what, items string, n int, at []string) *schemas.Diagnostic {
	if len(at) < 2 || n <= maxItems {
		return nil
	}
	return &schemas.Diagnostic{File: file, Line: pos.Line(), Column: pos.Column(), Path: formatPath(at),
		Message: fmt.Sprintf("a %s of %d %s: at most %d inside a route, upstream or policy", what, n, items, maxItems)}
}

func duplicateKeysIn(file string, x ast.Expr, at []string) []schemas.Diagnostic {
	switch x := x.(type) {
	case *ast.StructLit:
		return duplicateKeys(file, x, at)
	case *ast.ListLit:
		if d := tooMany(file, x.Pos(), "list", "elements", len(x.Elts), at); d != nil {
			return []schemas.Diagnostic{*d}
		}
		var diags []schemas.Diagnostic
		for i, el := range x.Elts {
			diags = append(diags, duplicateKeysIn(file, el, append(at[:len(at):len(at)], fmt.Sprintf("[%d]", i)))...)
		}
		return diags
	}
	return nil
}
