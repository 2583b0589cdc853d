package ghreport

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// commentDiagnostics bounds the problems listed in the plan comment; the
// check run's annotations carry all of them.
const commentDiagnostics = 50

// truncatedNote ends a plan cut to fit GitHub's limits.
const truncatedNote = "\n\n_… truncated to fit GitHub's size limit; run `agent diff` for the full plan._\n"

// renderComment is the plan comment's markdown, at most limit bytes (and so
// at most limit characters): the marker, the verdict, the counts, the
// problems, the plan and the commands an operator would run next.
func renderComment(pr PullRequest, ev Evaluation, sha, configPath string, limit int) string {
	base := ev.BaseSHA
	if base == "" {
		base = pr.BaseSHA
	}
	var head strings.Builder
	head.WriteString(CommentMarker + "\n")
	if n := len(ev.Diagnostics); n > 0 {
		fmt.Fprintf(&head, "### gitgate: ❌ %d problem(s) in `%s`\n\n", n, short(sha))
	} else {
		fmt.Fprintf(&head, "### gitgate: ✅ `%s` is valid\n\n", short(sha))
	}
	fmt.Fprintf(&head, "Plan for #%d at `%s` against `%s`", pr.Number, short(sha), escapeInline(pr.BaseRef))
	if base != "" {
		fmt.Fprintf(&head, " at `%s`", short(base))
	}
	head.WriteString(".\n\n")

	if n := len(ev.Diagnostics); n > 0 {
		fmt.Fprintf(&head, "<details open>\n<summary>%d problem(s) to fix before merging</summary>\n\n", n)
		var list strings.Builder
		writeDiagnostics(&list, ev.Diagnostics, commentDiagnostics)
		head.WriteString(list.String())
		head.WriteString("\n</details>\n\n")
	} else {
		writeCounts(&head, ev.Counts)
		head.WriteString("\n")
	}

	tail := nextSteps(base, configPath, len(ev.Diagnostics) == 0)

	var plan string
	budget := limit - head.Len() - len(tail) - 2
	switch {
	case ev.PlanMarkdown == nil && len(ev.Diagnostics) > 0:
		plan = "_No plan: fix the problems above first._\n"
	case ev.PlanMarkdown == nil || !ev.Changed:
		plan = ""
	case budget < 256:
		plan = "_The plan does not fit in a comment; run `agent diff` to see it._\n"
	default:
		plan = truncateMarkdown(strings.ToValidUTF8(ev.PlanMarkdown(budget), "�"), budget)
	}
	if plan != "" && !strings.HasSuffix(plan, "\n") {
		plan += "\n"
	}
	body := head.String() + plan
	if plan != "" {
		body += "\n"
	}
	body += tail
	return truncateMarkdown(body, limit)
}

// nextSteps is the commands section of the comment.
func nextSteps(base, configPath string, valid bool) string {
	dir := configPath
	if dir == "" {
		dir = "."
	}
	var b strings.Builder
	b.WriteString("<details>\n<summary>Next steps</summary>\n\n```sh\n")
	b.WriteString("# from a checkout of this branch\n")
	fmt.Fprintf(&b, "agent validate %s\n", shellWord(dir))
	if base != "" {
		fmt.Fprintf(&b, "agent diff --base %s --format markdown\n", short(base))
	}
	if valid && base != "" {
		b.WriteString("# after merge: see what the gateway serves, and go back if needed\n")
		b.WriteString("agent status\n")
		fmt.Fprintf(&b, "agent rollback %s\n", short(base))
	}
	b.WriteString("```\n\n</details>\n\n<sub>gitgate edits this comment on every push.</sub>\n")
	return b.String()
}

// truncateMarkdown returns s if it fits in max bytes and closes every code
// fence and <details> it opens; otherwise the longest prefix of whole lines
// that fits with a truncation note and the closers of whatever was open at
// the cut, so the result is still well-formed markdown.
func truncateMarkdown(s string, max int) string {
	var st mdState
	if len(s) <= max {
		st.text(s)
		if st.closed() {
			return s
		}
		st = mdState{}
	}
	best, bestState := -1, st
	if st.closersLen() <= max {
		best = 0
	}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			break // a last line without newline: only whole s would include it
		}
		st.line(s[i : i+j])
		i += j + 1
		if i+st.closersLen() > max {
			if i > max {
				break
			}
			continue
		}
		best, bestState = i, st
	}
	if best < 0 {
		return ""
	}
	return s[:best] + bestState.closers()
}

// mdState tracks what is open while reading markdown line by line.
type mdState struct {
	fence   string // the opening fence ("```", "~~~~"), or "" outside one
	details int    // <details> blocks opened and not closed, outside fences
}

// line advances the state past one line (without its newline).
func (m *mdState) line(l string) {
	trimmed := l
	for k := 0; k < 3 && strings.HasPrefix(trimmed, " "); k++ {
		trimmed = trimmed[1:]
	}
	if len(trimmed) >= 3 && (trimmed[0] == '`' || trimmed[0] == '~') {
		ch := trimmed[0]
		n := 0
		for n < len(trimmed) && trimmed[n] == ch {
			n++
		}
		if n >= 3 {
			rest := trimmed[n:]
			switch {
			case m.fence == "":
				if ch != '`' || !strings.Contains(rest, "`") {
					m.fence = trimmed[:n]
					return
				}
			case m.fence[0] == ch && n >= len(m.fence) && strings.TrimSpace(rest) == "":
				m.fence = ""
				return
			}
		}
	}
	if m.fence != "" {
		return
	}
	lower := strings.ToLower(l)
	m.details += strings.Count(lower, "<details")
	m.details -= strings.Count(lower, "</details>")
	if m.details < 0 {
		m.details = 0
	}
}

// text advances the state past s.
func (m *mdState) text(s string) {
	for _, l := range strings.Split(s, "\n") {
		m.line(l)
	}
}

// closed reports whether nothing is open.
func (m *mdState) closed() bool { return m.fence == "" && m.details == 0 }

const detailsCloser = "\n</details>\n"

// closersLen is len(m.closers()), computed without building it.
func (m *mdState) closersLen() int {
	n := len(truncatedNote) + m.details*len(detailsCloser)
	if m.fence != "" {
		n += len(m.fence) + 1
	}
	return n
}

// closers is what must follow a cut to close what is open.
func (m *mdState) closers() string {
	var b strings.Builder
	if m.fence != "" {
		b.WriteString(m.fence)
		b.WriteString("\n")
	}
	b.WriteString(truncatedNote)
	for k := 0; k < m.details; k++ {
		b.WriteString(detailsCloser)
	}
	return b.String()
}

// clip shortens s to at most n runes, ending with "…" when cut, and puts it
// on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// codeSpan quotes s as inline code, safe whatever backticks it holds.
func codeSpan(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// codeBlock quotes s as a fenced block, safe whatever fences it holds.
func codeBlock(s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence + "\n" + strings.TrimRight(s, "\n") + "\n" + fence + "\n"
}

var inlineEscaper = strings.NewReplacer(
	"\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "&", "&amp;", "|", "\\|", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]",
)

// escapeInline makes s plain text inside a markdown line or table cell: it
// cannot open HTML, code, emphasis, links or new table cells.
func escapeInline(s string) string {
	return inlineEscaper.Replace(s)
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// credentialsInURL matches the userinfo of a URL ("https://user:token@").
var credentialsInURL = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]{0,20}://)[^/@\s]{1,256}@`)

// redact removes credentials embedded in URLs before text leaves the agent.
func redact(s string) string {
	return credentialsInURL.ReplaceAllString(s, "${1}***@")
}
