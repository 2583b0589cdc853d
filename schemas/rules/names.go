package rules

import (
	"fmt"
	"strings"
)

// Unknown is the message for a reference to a name that is not defined:
// one and many name the kind of thing ("policy", "policies"), known the
// defined names in sorted order. It suggests the closest name, or lists the
// names when there are few.
func Unknown(one, many, name string, known []string) string {
	what := many
	msg := fmt.Sprintf("unknown %s %q", one, name)
	if s := Closest(name, known); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) == 0 {
		return msg + fmt.Sprintf(": no %s are defined", what)
	}
	if len(known) <= 5 {
		return msg + fmt.Sprintf(" (defined %s: %s)", what, strings.Join(known, ", "))
	}
	return msg
}

// MaxSuggestions is how many unknown references of one kind a Suggester
// looks for a likely typo of (an edit distance against every defined
// name); the references after them get the plain message.
const MaxSuggestions = 20

// Suggester makes the messages for references to undefined names of one
// kind, against one set of defined names: the names are listed and sorted
// once, on the first unknown reference, and only the first MaxSuggestions
// references are compared with every name. A config with thousands of
// unknown references among thousands of names then costs linear time,
// where a sort and a comparison with every name per reference took tens of
// seconds and gigabytes.
type Suggester struct {
	one, many string
	names     func() []string
	known     []string
	listed    bool
	suggested int
}

// NewSuggester returns a Suggester for references to one kind of thing
// (one, many: "policy", "policies"), names listing the defined ones.
func NewSuggester(one, many string, names func() []string) *Suggester {
	return &Suggester{one: one, many: many, names: names}
}

// Unknown is the message for a reference to name, which is not defined:
// Unknown's, without the suggestion past the first MaxSuggestions.
func (s *Suggester) Unknown(name string) string {
	if !s.listed {
		s.known, s.listed = s.names(), true
	}
	if s.suggested < MaxSuggestions || len(s.known) <= 5 {
		s.suggested++
		return Unknown(s.one, s.many, name, s.known)
	}
	return fmt.Sprintf("unknown %s %q", s.one, name)
}

// Closest returns the candidate nearest to s by edit distance, or "" when
// none is close enough to be a likely typo.
func Closest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	// Optimal string alignment distance: a swap of two neighbours ("weigth")
	// costs one, like any other typo.
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
