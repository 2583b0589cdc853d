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
