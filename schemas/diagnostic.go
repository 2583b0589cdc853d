package schemas

import (
	"fmt"
	"strings"
)

// Diagnostic is one problem a user must fix, pointing at the input that
// caused it. File, Line and Column are empty/zero only when no input position
// exists (a bundle compiled by the gateway has field paths but no files).
type Diagnostic struct {
	// File is the path relative to the config directory.
	File string `json:"file,omitempty"`
	// Line is 1-based.
	Line int `json:"line,omitempty"`
	// Column is 1-based.
	Column int `json:"column,omitempty"`
	// Path is the field path, such as "routes.api.backends[0].weight".
	Path string `json:"path,omitempty"`
	// Message says what is wrong and what to do about it.
	Message string `json:"message"`
}

// String formats d as "file:line:col: path: message", leaving out what is
// unknown.
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d", d.Line)
			if d.Column > 0 {
				fmt.Fprintf(&b, ":%d", d.Column)
			}
		}
		b.WriteString(": ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// InvalidError is returned when a config or bundle fails validation or
// compilation. It carries every problem found, so it can become a PR
// annotation or a 422 answer intact.
type InvalidError struct {
	Diagnostics []Diagnostic
}

// Error lists the first problems on one line each.
func (e *InvalidError) Error() string {
	const shown = 10
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config: %d problem(s)", len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		if i == shown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Diagnostics)-shown)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}
