package diff

import (
	"fmt"
	"html"
	"strings"
	"unicode/utf8"
)

// symbol is the one-character mark of an action, as terraform shows it.
func (a Action) symbol() string {
	switch a {
	case ActionCreate:
		return "+"
	case ActionDelete:
		return "-"
	}
	return "~"
}

// symbol marks a field as set, unset or changed.
func (f Field) symbol() string {
	switch {
	case f.Old == "":
		return "+"
	case f.New == "":
		return "-"
	}
	return "~"
}

// String renders the field on one line without its symbol:
// "backends: stable 90→75, canary 10→25", "timeout: 30s → 10s".
func (f Field) String() string {
	if f.Note != "" && (f.Path == "backends" || f.Path == "policies") {
		return f.Path + ": " + f.Note
	}
	var s string
	switch {
	case f.Old == "":
		s = f.Path + ": " + f.New
	case f.New == "":
		s = f.Path + ": " + f.Old
	default:
		s = f.Path + ": " + f.Old + " → " + f.New
	}
	if f.Note != "" && f.Old != "" && f.New != "" && f.Note != "changed" {
		s += " (" + f.Note + ")"
	}
	return s
}

// headline is the one-line count of a plan.
func (s Summary) headline() string {
	if s.Total.Total() == 0 {
		return "No changes."
	}
	return fmt.Sprintf("%d to create, %d to update, %d to delete.", s.Total.Create, s.Total.Update, s.Total.Delete)
}

// Text renders the plan for a terminal, in the manner of terraform plan:
// one line per change ("  + route api", "  ~ route web", "  - upstream
// legacy"), the changed fields indented under it ("      ~ backends: stable
// 90→75, canary 10→25"), and a closing count
// ("Plan: 1 to create, 1 to update, 1 to delete.").
func (p *Plan) Text() string {
	if p.Empty() {
		return "No changes. The configs are the same.\n"
	}
	var b strings.Builder
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "  %s %s %s\n", c.Action.symbol(), c.Kind, c.Name)
		for _, f := range c.Fields {
			fmt.Fprintf(&b, "      %s %s\n", f.symbol(), f)
		}
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s.", w)
	}
	if len(p.Warnings) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nPlan: %s\n", p.Summary().headline())
	return b.String()
}

// kindTitle is the section heading of a kind.
func kindTitle(k Kind) string {
	switch k {
	case KindRoute:
		return "Routes"
	case KindUpstream:
		return "Upstreams"
	case KindPolicy:
		return "Policies"
	case KindSafety:
		return "Safety"
	}
	return string(k)
}

// markdownHeader is the headline and the counts table.
func (p *Plan) markdownHeader() string {
	s := p.Summary()
	var b strings.Builder
	fmt.Fprintf(&b, "**Plan:** %s\n\n", s.headline())
	for _, w := range p.warnings() {
		fmt.Fprintf(&b, "> [!WARNING]\n> %s.\n\n", html.EscapeString(w))
	}
	if s.Total.Total() == 0 {
		return b.String()
	}
	b.WriteString("| | create | update | delete |\n|:--|--:|--:|--:|\n")
	for _, r := range []struct {
		name string
		c    Counts
	}{{"routes", s.Routes}, {"upstreams", s.Upstreams}, {"policies", s.Policies}} {
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", r.name, r.c.Create, r.c.Update, r.c.Delete)
	}
	b.WriteString("\n")
	return b.String()
}

// fence returns a code fence longer than any run of backticks in lines, so
// no value can close the block early.
func fence(lines []string) string {
	longest := 0
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// changeSummary is the folded line of a change, HTML-escaped.
func changeSummary(c Change) string {
	what := fmt.Sprintf("%d field", len(c.Fields))
	if len(c.Fields) != 1 {
		what += "s"
	}
	return fmt.Sprintf("<code>%s</code> %s <b>%s</b> (%s, %s)", c.Action.symbol(), c.Kind,
		html.EscapeString(c.Name), c.Action, what)
}

// markdownChange renders one change, showing at most keep of its fields
// (keep < 0: all). Every block it opens it closes.
func markdownChange(c Change, keep int) string {
	if len(c.Fields) == 0 {
		return fmt.Sprintf("<p><code>%s</code> %s <b>%s</b> (%s)</p>\n\n", c.Action.symbol(), c.Kind,
			html.EscapeString(c.Name), c.Action)
	}
	if keep < 0 || keep > len(c.Fields) {
		keep = len(c.Fields)
	}
	lines := make([]string, 0, keep+1)
	for _, f := range c.Fields[:keep] {
		lines = append(lines, f.symbol()+" "+f.String())
	}
	if left := len(c.Fields) - keep; left > 0 {
		lines = append(lines, fmt.Sprintf("# … %d more field(s) not shown", left))
	}
	fc := fence(lines)
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n%sdiff\n", changeSummary(c), fc)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%s\n\n</details>\n\n", fc)
	return b.String()
}

// truncatedNote says how many changes were left out.
func truncatedNote(n int) string {
	return fmt.Sprintf("_… %d more change(s) not shown: the plan is larger than this summary allows. Run `agent diff` for the full plan._\n", n)
}

// Markdown renders the plan for a pull-request comment or a GitHub step
// summary: the headline and a counts table, then one folded <details>
// section per change under a heading per kind. maxBytes bounds the output
// (GitHub comments take at most 65536 characters); 0 or less means no bound.
// Truncation happens between sections, or between the lines of a section
// whose fence and <details> are then closed, and ends with a line saying how
// many changes were left out, so the markdown always stays balanced.
func (p *Plan) Markdown(maxBytes int) string {
	head := p.markdownHeader()
	if maxBytes <= 0 {
		maxBytes = int(^uint(0) >> 1)
	}
	if p.Empty() {
		return cutRunes(head, maxBytes)
	}
	reserve := len(truncatedNote(len(p.Changes)))
	if len(head)+reserve > maxBytes {
		// Not even the table fits: a bare headline, which has no markup to
		// leave open.
		return cutRunes("Plan: "+p.Summary().headline()+" (too large to show)\n", maxBytes)
	}
	var b strings.Builder
	b.WriteString(head)
	// Invariant: before each change, b.Len()+reserve <= maxBytes, so the
	// note always fits.
	var lastKind Kind
	for i, c := range p.Changes {
		heading := ""
		if c.Kind != lastKind {
			heading = "#### " + kindTitle(c.Kind) + "\n\n"
		}
		last := i == len(p.Changes)-1
		room := maxBytes - b.Len()
		if !last {
			room -= reserve
		}
		if full := markdownChange(c, -1); len(heading)+len(full) <= room {
			b.WriteString(heading)
			b.WriteString(full)
			lastKind = c.Kind
			continue
		}
		// Show as many fields of this change as fit, then stop. The size of
		// a partial section grows with the fields kept, so search for the
		// largest count that fits.
		room = maxBytes - b.Len() - reserve
		if last {
			room += reserve // nothing left out after it when it is shown
		}
		lo, hi := 0, len(c.Fields)-1 // lo fits (0 means: show none)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if len(heading)+len(markdownChange(c, mid)) <= room {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		left := len(p.Changes) - i
		if lo > 0 {
			b.WriteString(heading)
			b.WriteString(markdownChange(c, lo))
			left--
		}
		if left > 0 {
			b.WriteString(truncatedNote(left))
		}
		return b.String()
	}
	return b.String()
}

// cutRunes cuts s to at most n bytes without splitting a rune.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
