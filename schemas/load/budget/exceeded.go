package budget

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// Resource names what a budget bounds.
type Resource string

// The resources of a Budget, and the output a child may write.
const (
	ResourceTime   Resource = "time"
	ResourceMemory Resource = "memory"
	ResourceOutput Resource = "output"
)

// ExceededError says that the evaluation of a config's CUE files ran out of
// its budget. Which of the files caused it is unknown: all of them are
// named.
type ExceededError struct {
	// Resource is what ran out.
	Resource Resource
	// Limit is the budget, as a person writes it ("20s", "1 GiB").
	Limit string
	// Files are the .cue files of the config, relative to its directory.
	Files []string
}

// Error says what ran out, for which files.
func (e *ExceededError) Error() string {
	return fmt.Sprintf("evaluation exceeded its %s budget (%s) evaluating %s", e.Resource, e.Limit, strings.Join(e.Files, ", "))
}

// Diagnostics returns one diagnostic per file, each saying what ran out and
// what to look for.
func (e *ExceededError) Diagnostics() []schemas.Diagnostic {
	var hint string
	switch e.Resource {
	case ResourceTime:
		hint = "look for nested or large comprehensions, or raise the agent's --eval-timeout"
	case ResourceMemory:
		hint = "look for values doubled over and over (strings, lists) or comprehensions over large ranges, or raise the agent's --eval-memory"
	default:
		hint = "the config it produced is too large to be a gateway config"
	}
	others := ""
	if len(e.Files) > 1 {
		others = fmt.Sprintf(" (the .cue files %s are evaluated together)", strings.Join(e.Files, ", "))
	}
	out := make([]schemas.Diagnostic, len(e.Files))
	for i, f := range e.Files {
		out[i] = schemas.Diagnostic{File: f, Message: fmt.Sprintf(
			"evaluation exceeded its %s budget (%s) and was stopped%s: %s", e.Resource, e.Limit, others, hint)}
	}
	return out
}

func exceeded(r Resource, limit string, files []string) load.Result {
	e := &ExceededError{Resource: r, Limit: limit, Files: files}
	return load.Result{Diagnostics: e.Diagnostics()}
}

// crashed returns the diagnostics of a child that died for a reason other
// than its budget, quoting the first line of what it wrote to stderr.
func crashed(files []string, exit *exec.ExitError, stderr string) []schemas.Diagnostic {
	why, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if why == "" {
		why = exit.String()
	}
	out := make([]schemas.Diagnostic, len(files))
	for i, f := range files {
		out[i] = schemas.Diagnostic{File: f, Message: fmt.Sprintf("evaluation of the .cue files failed (%s): %s", exit, why)}
	}
	return out
}

// Byte units of ParseBytes and formatBytes.
var units = []struct {
	suffix string
	size   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// ParseBytes reads a size written as an integer and an optional unit, KiB,
// MiB, GiB or TiB (powers of 1024; K, M, G, T and KB, MB, GB, TB mean the
// same), as in "1GiB", "512 MiB" or "1073741824".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		short := u.suffix[:1]
		if rest, ok := cutSuffixFold(t, u.suffix, short+"B", short); ok {
			t, mult = strings.TrimSpace(rest), u.size
			break
		}
	}
	if rest, ok := cutSuffixFold(t, "B"); ok && mult == 1 {
		t = strings.TrimSpace(rest)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: write a whole number with an optional unit (KiB, MiB, GiB), such as 1GiB", s)
	}
	return n * mult, nil
}

func cutSuffixFold(s string, suffixes ...string) (string, bool) {
	for _, suf := range suffixes {
		if len(s) >= len(suf) && strings.EqualFold(s[len(s)-len(suf):], suf) {
			return s[:len(s)-len(suf)], true
		}
	}
	return s, false
}

// FormatBytes writes n as ParseBytes reads it, in the largest unit that
// divides it ("1 GiB").
func FormatBytes(n int64) string {
	for _, u := range units {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%d B", n)
}
