package load

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// posIndex maps field paths ("routes.api.backends[0].weight") to the place
// in the input where the field's key is written. It is built from the
// parsed files on first use, so a valid config never pays for it. It is a
// tree of path segments: a map from each whole path held a copy of every
// ancestor's keys per node, gigabytes for a file that nests long keys deep
// over many leaves.
type posIndex struct {
	sources []source
	files   map[string]bool
	once    sync.Once
	root    posNode
}

// posNode is one path segment of a posIndex: where it is first written,
// and the segments below it.
type posNode struct {
	pos      token.Pos
	set      bool
	children map[string]*posNode
}

// child returns the node of segment name below n, made when missing.
func (n *posNode) child(name string) *posNode {
	c := n.children[name]
	if c == nil {
		if n.children == nil {
			n.children = make(map[string]*posNode)
		}
		c = &posNode{}
		n.children[name] = c
	}
	return c
}

// mark records pos as where n is written, unless it was seen before.
func (n *posNode) mark(pos token.Pos) {
	if !n.set {
		n.pos, n.set = pos, true
	}
}

func newPosIndex(sources []source) *posIndex {
	files := make(map[string]bool, len(sources))
	for _, s := range sources {
		files[s.file] = true
	}
	return &posIndex{sources: sources, files: files}
}

func (x *posIndex) build() {
	for _, s := range x.sources {
		switch n := s.node.(type) {
		case *ast.File:
			x.addDecls(n.Decls, &x.root)
		case *ast.StructLit:
			x.addDecls(n.Elts, &x.root)
		}
	}
}

func (x *posIndex) addDecls(decls []ast.Decl, at *posNode) {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			name, _, err := ast.LabelName(d.Label)
			if err != nil {
				continue
			}
			c := at.child(name)
			c.mark(d.Label.Pos())
			x.addExpr(d.Value, c)
		case *ast.EmbedDecl:
			x.addExpr(d.Expr, at)
		}
	}
}

func (x *posIndex) addExpr(e ast.Expr, at *posNode) {
	switch e := e.(type) {
	case *ast.StructLit:
		x.addDecls(e.Elts, at)
	case *ast.ListLit:
		for i, el := range e.Elts {
			c := at.child(fmt.Sprintf("[%d]", i))
			c.mark(el.Pos())
			x.addExpr(el, c)
		}
	case *ast.BinaryExpr:
		// A CUE file may write `a & {...}`; index both sides.
		x.addExpr(e.X, at)
		x.addExpr(e.Y, at)
	}
}

// nearest returns the position of p, or of its nearest ancestor written in
// the input, and whether one was found.
func (x *posIndex) nearest(p []string) (token.Pos, bool) {
	x.once.Do(x.build)
	pos, found := token.NoPos, false
	n := &x.root
	for _, seg := range p {
		if n = n.children[seg]; n == nil {
			break
		}
		if n.set {
			pos, found = n.pos, true
		}
	}
	return pos, found
}

// exact returns the position of p itself when it is written in the input.
func (x *posIndex) exact(p []string) (token.Pos, bool) {
	x.once.Do(x.build)
	n := &x.root
	for _, seg := range p {
		if n = n.children[seg]; n == nil {
			return token.NoPos, false
		}
	}
	return n.pos, n.set && len(p) > 0
}

// segments splits a formatted path back into segments. It is the inverse of
// formatPath for the paths the checks build.
func segments(path string) []string {
	var out []string
	for len(path) > 0 {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if strings.HasPrefix(path, `["`) {
				// A quoted key: find the closing quote, honouring escapes.
				i := 2
				for i < len(path) && path[i] != '"' {
					if path[i] == '\\' {
						i++
					}
					i++
				}
				if i < len(path) {
					key := path[2:i]
					key = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(key)
					out = append(out, key)
					path = path[min(i+2, len(path)):]
					continue
				}
			}
			if end < 0 {
				return append(out, path)
			}
			out = append(out, path[:end+1])
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, path[:end])
			path = path[end:]
		}
	}
	return out
}

// locate fills File, Line and Column of diagnostics that have only a Path.
func (x *posIndex) locate(diags []schemas.Diagnostic) []schemas.Diagnostic {
	for i, d := range diags {
		if d.File != "" {
			continue
		}
		if pos, ok := x.nearest(segments(d.Path)); ok {
			diags[i].File, diags[i].Line, diags[i].Column = pos.Filename(), pos.Line(), pos.Column()
		}
	}
	sortDiagnostics(diags)
	return diags
}

var (
	enumBound = regexp.MustCompile(`^invalid value (.*) \(out of bound =~"\^\(([A-Za-z0-9_|:-]+)\)\$"\)$`)
	// A CUE message may quote a value; secrets must never be echoed.
	secretFields = map[string]bool{"secret": true, "jwksRef": true}
)

// cueDiags maps CUE evaluation errors to diagnostics: the position is the
// first one in the user's files (or the nearest input node of the path, for
// "required" errors that carry only the schema's position), the path is in
// config syntax and the message is reworded where CUE's is cryptic.
// Paths of errors are relative to the evaluated value; at is its path in
// the config.
func cueDiags(err error, idx *posIndex, at []string) []schemas.Diagnostic {
	var diags []schemas.Diagnostic
	seen := make(map[schemas.Diagnostic]bool)
	for _, e := range errors.Errors(err) {
		raw := e.Path()
		if len(raw) > 0 && strings.HasPrefix(raw[0], "#") {
			raw = raw[1:]
		}
		p := cuePath(append(at[:len(at):len(at)], raw...))
		var user []token.Pos
		for _, pos := range append([]token.Pos{e.Position()}, e.InputPositions()...) {
			if pos.IsValid() && idx.files[pos.Filename()] && !slices.Contains(user, pos) {
				user = append(user, pos)
			}
		}
		slices.SortFunc(user, func(a, b token.Pos) int { return a.Compare(b) })
		d := schemas.Diagnostic{Path: formatPath(p), Message: cueMessage(e, p, idx)}
		if len(user) > 0 {
			d.File, d.Line, d.Column = user[0].Filename(), user[0].Line(), user[0].Column()
			if len(user) > 1 && user[1].Filename() != user[0].Filename() || len(user) > 1 && strings.HasPrefix(d.Message, "conflicting") {
				d.Message += fmt.Sprintf(" (also defined at %s:%d:%d)", user[1].Filename(), user[1].Line(), user[1].Column())
			}
		} else if pos, ok := idx.nearest(p); ok {
			d.File, d.Line, d.Column = pos.Filename(), pos.Line(), pos.Column()
		}
		if !seen[d] {
			seen[d] = true
			diags = append(diags, d)
		}
	}
	sortDiagnostics(diags)
	return diags
}

func cueMessage(e errors.Error, p []string, idx *posIndex) string {
	format, args := e.Msg()
	msg := fmt.Sprintf(format, args...)
	last := ""
	if len(p) > 0 {
		last = p[len(p)-1]
	}
	switch {
	case secretFields[last] || len(p) > 1 && secretFields[p[len(p)-2]]:
		return "must be a reference {env: NAME} or {file: PATH} with exactly one of the two; secrets are never written in the repo"
	case strings.Contains(msg, "field not allowed"):
		m := fmt.Sprintf("unknown field %q", last)
		if len(p) > 0 {
			if s := rules.Closest(last, fieldNames(p[:len(p)-1])); s != "" {
				m += fmt.Sprintf(" (did you mean %q?)", s)
			}
		}
		return m
	case strings.Contains(msg, "field is required but not present"),
		strings.HasPrefix(msg, "incomplete value"):
		return fmt.Sprintf("required field %q is missing", last)
	case strings.Contains(msg, "does not satisfy list.MinItems(1)"):
		if _, ok := idx.exact(p); !ok {
			return fmt.Sprintf("required field %q is missing", last)
		}
		return "must have at least one item"
	}
	if m := enumBound.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("invalid value %s: must be one of %s", m[1], strings.ReplaceAll(m[2], "|", ", "))
	}
	if m := regexBound.FindStringSubmatch(msg); m != nil {
		for _, b := range boundWords {
			if strings.Contains(m[2], b.pattern) {
				return fmt.Sprintf("invalid value %s: %s", m[1], b.words)
			}
		}
	}
	return msg
}

var regexBound = regexp.MustCompile(`^invalid value (.*) \(out of bound ([!=]~.*)\)$`)

// boundWords says in words what the schema's regexes require, keyed by a
// distinctive part of the pattern as CUE prints it.
var boundWords = []struct{ pattern, words string }{
	{`!~"^(0+(\\.0+)?`, "a duration must be greater than zero"},
	{`(ns|us|µs|ms|s|m|h))+$"`, "write a Go duration such as 250ms, 30s or 1m30s"},
	{`^[A-Z][A-Z0-9_-]{0,31}$`, "write an upper-case HTTP method such as GET"},
	{`^[A-Za-z0-9!#$%&'*+.^_`, "not a valid HTTP header name"},
	{`(\\*\\.)?[A-Za-z0-9]`, "write a host name such as api.example.com or *.example.com"},
	{`^[A-Za-z0-9_.-]+$`, "names use letters, digits, _, . and -"},
	{`^/`, "must start with /"},
	{`^[A-Za-z_][A-Za-z0-9_]*$`, "an environment variable name (letters, digits, _)"},
	{`header:`, `must be client_ip, route or header:NAME`},
}
