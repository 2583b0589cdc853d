package proxy

import (
	"regexp"
	"regexp/syntax"
)

// progSize returns the number of instructions of re's compiled program.
func progSize(re *regexp.Regexp) int {
	s, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return 0
	}
	p, err := syntax.Compile(s.Simplify())
	if err != nil {
		return 0
	}
	return len(p.Inst)
}
