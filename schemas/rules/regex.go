package rules

import "regexp/syntax"

// Bounds on user regexes: the source length and the size of the compiled
// program of the pattern as written. RE2 runs in time linear in the input,
// but a huge program still costs memory and time per request; a short
// pattern with large counted repeats ("(a{1,100}){1,100}") is refused by the
// second bound. 2000 instructions is the stricter of the two limits the
// agent (2000) and the gateway (4096) used before they shared this rule:
// keeping the agent's limit means no bundle accepted before is refused now
// by the agent, and the gateway compiles every bundle the agent accepts.
const (
	MaxRegexBytes = 1024
	MaxRegexInsts = 2000
)

// Regex reports a pattern (RE2 syntax) that does not compile or exceeds the
// bounds. Callers compile the pattern the way they use it (the router
// anchors it) after Regex accepted it.
func Regex(pattern string) error {
	if len(pattern) > MaxRegexBytes {
		return fail("regex is %d bytes, over the limit of %d", len(pattern), MaxRegexBytes)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return fail("regex does not compile: %v", err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return fail("regex does not compile: %v", err)
	}
	if len(prog.Inst) > MaxRegexInsts {
		return fail("regex compiles to %d instructions, over the limit of %d: simplify it (large repeat counts multiply)", len(prog.Inst), MaxRegexInsts)
	}
	return nil
}
