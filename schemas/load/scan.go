package load

import (
	"fmt"
	"unicode/utf8"

	"github.com/gitgate/gitgate/schemas"
)

// Bounds of the byte pre-scan. A real config nests about eight levels deep
// and needs few YAML aliases; these leave ample room and refuse bombs before
// any parser allocates a tree.
const (
	maxDepth   = 64
	maxAliases = 100
)

// prescan refuses input that is not UTF-8, nests deeper than maxDepth or (for
// YAML) uses more than maxAliases aliases. It runs in one pass over data and
// allocates nothing, so hostile files fail fast with bounded memory. The
// depth it measures is an upper bound of the parsed depth: it counts flow
// brackets and, for YAML, indentation levels and sequence dashes.
func prescan(file string, data []byte, yaml bool) *schemas.Diagnostic {
	if !utf8.Valid(data) {
		line, col := 1, 1
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i += n
		}
		return &schemas.Diagnostic{File: file, Line: line, Column: col, Message: "file is not valid UTF-8"}
	}
	var (
		flow          int  // open [ and { brackets
		quote         byte // inside '...' or "..." when non-zero
		comment       bool
		lineStart     = true
		indent        int
		indents       [maxDepth + 2]int // YAML block indentation stack
		nIndents      int
		dashes        int // "- " markers at the start of the current line
		aliases       int
		line, lineOff = 1, 0
	)
	fail := func(i int, msg string) *schemas.Diagnostic {
		return &schemas.Diagnostic{File: file, Line: line, Column: i - lineOff + 1, Message: msg}
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			line, lineOff = line+1, i+1
			lineStart, indent, dashes, comment = true, 0, 0, false
			if quote == '\'' || quote == '"' {
				// Quoted YAML scalars may span lines; JSON and CUE strings may not
				// but a parser will say so.
				lineStart = false
			}
			continue
		}
		if comment {
			continue
		}
		if quote != 0 {
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		if yaml && lineStart {
			if c == ' ' {
				indent++
				continue
			}
			if c == '#' || c == '\r' {
				comment = c == '#'
				continue
			}
			if c == '-' && i+1 < len(data) && (data[i+1] == ' ' || data[i+1] == '\n') {
				// A sequence entry; its content is one level deeper.
				dashes++
				if nIndents+dashes > maxDepth {
					return fail(i, fmt.Sprintf("nesting deeper than %d levels: refused", maxDepth))
				}
				indent++
				continue
			}
			lineStart = false
			if flow == 0 {
				for nIndents > 0 && indents[nIndents-1] >= indent {
					nIndents--
				}
				indents[nIndents] = indent
				nIndents++
				if nIndents > maxDepth {
					return fail(i, fmt.Sprintf("nesting deeper than %d levels: refused", maxDepth))
				}
			}
		}
		lineStart = false
		switch c {
		case '"', '\'':
			// A quote starts a string where a value starts. In YAML an apostrophe
			// inside a plain scalar ("it's") is not a quote.
			if !yaml || i == 0 || isValueStart(data[i-1]) {
				quote = c
			}
		case '#':
			if yaml && (i == 0 || data[i-1] == ' ' || data[i-1] == '\t') {
				comment = true
			}
		case '/':
			if !yaml && i+1 < len(data) && data[i+1] == '/' {
				comment = true
			}
		case '[', '{':
			flow++
			if flow+nIndents > maxDepth {
				return fail(i, fmt.Sprintf("nesting deeper than %d levels: refused", maxDepth))
			}
		case ']', '}':
			if flow > 0 {
				flow--
			}
		case '*':
			if yaml && (i == 0 || isValueStart(data[i-1])) && i+1 < len(data) && data[i+1] > ' ' {
				aliases++
				if aliases > maxAliases {
					return fail(i, fmt.Sprintf("more than %d YAML aliases: refused (alias expansion can blow up memory)", maxAliases))
				}
			}
		}
	}
	return nil
}

// isValueStart reports whether a YAML token may start after byte b.
func isValueStart(b byte) bool {
	switch b {
	case ' ', '\t', '[', '{', ',', ':', '\n':
		return true
	}
	return false
}
