// Package clidoc renders a cobra command tree as the Markdown CLI reference
// of the README, and splices it between markers so that a test can fail when
// the README's copy differs from what the commands say.
package clidoc

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Markdown renders root and every available subcommand (depth first, in
// cobra's sorted order) as Markdown: a heading, the synopsis, the long
// description, the flags and the examples of each. The completion
// command's per-shell children are left out: their text is cobra's own.
func Markdown(root *cobra.Command) string {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var b strings.Builder
	walk(&b, root)
	return b.String()
}

func walk(b *strings.Builder, c *cobra.Command) {
	fmt.Fprintf(b, "#### `%s`\n\n", c.CommandPath())
	if c.Short != "" {
		b.WriteString(escape(strings.TrimSpace(c.Short)) + ".\n\n")
	}
	b.WriteString("```\n" + c.UseLine() + "\n```\n\n")
	for para := range strings.SplitSeq(strings.TrimSpace(c.Long), "\n\n") {
		if para == "" {
			continue
		}
		if strings.Contains(para, "\n  ") {
			// An indented list (arguments): keep its layout.
			b.WriteString("```\n" + para + "\n```\n\n")
		} else {
			b.WriteString(escape(para) + "\n\n")
		}
	}
	if c.HasAvailableLocalFlags() {
		b.WriteString("Flags:\n\n```\n" + strings.TrimRight(c.LocalFlags().FlagUsagesWrapped(100), "\n") + "\n```\n\n")
	}
	if c.HasExample() {
		b.WriteString("Examples:\n\n```\n" + strings.Trim(c.Example, "\n") + "\n```\n\n")
	}
	if c.Name() == "completion" && c.HasParent() {
		return
	}
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" {
			continue
		}
		walk(b, sub)
	}
}

// escape keeps Markdown from reading <sha> as an HTML tag.
func escape(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

// Begin and End return the markers that delimit the reference of the
// command named name in the README.
func Begin(name string) string {
	return "<!-- BEGIN CLI REFERENCE: " + name + " (generated: go generate ./" + name + ") -->"
}

// End returns the closing marker of name's reference.
func End(name string) string { return "<!-- END CLI REFERENCE: " + name + " -->" }

// Splice returns doc with the text between name's markers replaced by ref,
// and the text that was there. It fails when the markers are missing or out
// of order.
func Splice(doc, name, ref string) (updated, old string, err error) {
	begin, end := Begin(name), End(name)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", "", fmt.Errorf("README has no %q ... %q markers in that order", begin, end)
	}
	start := i + len(begin)
	return doc[:start] + "\n\n" + ref + doc[j:], doc[start:j], nil
}
