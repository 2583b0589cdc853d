package ghreport

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitgate/gitgate/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// realisticPlan is the kind of plan agent/internal/diff renders for a PR
// that adds routes, shifts canary weights and removes a policy; it honors
// maxBytes the way the diff package promises to.
func realisticPlan(maxBytes int) string {
	plan := `#### Routes

<details open>
<summary><b>+ 2 created</b>: <code>orders-v2</code>, <code>orders-v2-admin</code></summary>

| route | match | backends | policies |
| --- | --- | --- | --- |
| ` + "`orders-v2`" + ` | ` + "`api.example.com` `/v2/orders` (prefix)" + ` | orders-v2 100% | rate-standard, jwt-customers |
| ` + "`orders-v2-admin`" + ` | ` + "`admin.example.com` `/v2/orders/{id}` (template) GET, DELETE" + ` | orders-v2 100% | jwt-staff |

</details>

<details open>
<summary><b>~ 2 updated</b>: <code>checkout</code>, <code>catalog</code></summary>

` + "```diff" + `
 routes.checkout.backends:
-  checkout-v1  weight 90
-  checkout-v2  weight 10
+  checkout-v1  weight 50
+  checkout-v2  weight 50
 routes.catalog.policies:
-  ip-allow-office
` + "```" + `

</details>

#### Upstreams

<details>
<summary><b>+ 1 created</b>: <code>orders-v2</code></summary>

- ` + "`orders-v2`" + `: http://orders-v2.shop.svc:8080, http://orders-v2-b.shop.svc:8080 (least_requests, health /healthz every 5s)

</details>

#### Policies

<details open>
<summary><b>- 1 deleted</b>: <code>ip-allow-office</code></summary>

- ` + "`ip-allow-office`" + ` (ipAllow 10.20.0.0/16) was attached to ` + "`catalog`" + `; nothing references it any more.

</details>
`
	if len(plan) > maxBytes {
		return plan[:maxBytes] // a careless renderer: ghreport must still close the markdown
	}
	return plan
}

func realisticCounts() map[string]map[string]int {
	return map[string]map[string]int{
		"routes":    {"create": 2, "update": 2},
		"upstreams": {"create": 1},
		"policies":  {"delete": 1},
		"listeners": {},
	}
}

// assertClosedMarkdown fails when s leaves a code fence or <details> open.
func assertClosedMarkdown(t *testing.T, s string) {
	t.Helper()
	var st mdState
	st.text(s)
	if !st.closed() {
		t.Errorf("markdown left open: fence %q, %d <details>", st.fence, st.details)
	}
}

func TestCommentGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		ev     Evaluation
	}{
		{
			name:   "valid PR: routes added, weights shifted, a policy removed",
			golden: "comment_valid.md",
			ev:     Evaluation{HeadSHA: shaA, BaseSHA: shaBase, PlanMarkdown: realisticPlan, Counts: realisticCounts(), Changed: true},
		},
		{
			name:   "invalid PR",
			golden: "comment_invalid.md",
			ev: Evaluation{HeadSHA: shaA, BaseSHA: shaBase, Diagnostics: []schemas.Diagnostic{
				{File: "routes/checkout.yaml", Line: 12, Column: 9, Path: "routes.checkout.backends", Message: "weights sum to 90, not 100"},
				{File: "routes/orders.yaml", Line: 4, Column: 3, Path: "routes.orders-v2.policies[1]", Message: `unknown policy "jwt-customer"; did you mean "jwt-customers"?`},
				{Path: "upstreams.orders-v2", Message: "upstream is defined but no route uses it"},
			}},
		},
		{
			name:   "valid PR that changes nothing",
			golden: "comment_unchanged.md",
			ev:     Evaluation{HeadSHA: shaA, BaseSHA: shaBase, PlanMarkdown: realisticPlan, Changed: false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pr := PullRequest{Number: 42, HeadSHA: shaA, BaseRef: "main", BaseSHA: shaBase}
			got := renderComment(pr, tc.ev, shaA, "gateway", maxComment)
			assertClosedMarkdown(t, got)
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestCommentGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("comment differs from %s:\n%s", path, got)
			}
		})
	}
}

func TestCommentBudget(t *testing.T) {
	t.Parallel()
	huge := func(maxBytes int) string { // a renderer that ignores its budget
		var b strings.Builder
		b.WriteString("<details open>\n<summary>10000 routes</summary>\n\n```diff\n")
		for b.Len() < 200_000 {
			b.WriteString("+ route orders-é-")
			b.WriteString(strings.Repeat("x", 40))
			b.WriteString("\n")
		}
		b.WriteString("```\n</details>\n")
		return b.String()
	}
	tests := []struct {
		name  string
		plan  func(int) string
		limit int
	}{
		{"renderer ignoring its budget", huge, maxComment},
		{"tiny limit", realisticPlan, 2000},
		{"careless renderer cutting mid-fence", realisticPlan, 1600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := Evaluation{HeadSHA: shaA, PlanMarkdown: tc.plan, Counts: realisticCounts(), Changed: true}
			got := renderComment(PullRequest{Number: 1, BaseRef: "main", BaseSHA: shaBase}, ev, shaA, "", tc.limit)
			if len(got) > tc.limit || utf8.RuneCountInString(got) > tc.limit {
				t.Errorf("comment is %d bytes, limit %d", len(got), tc.limit)
			}
			if !utf8.ValidString(got) {
				t.Error("comment is not valid UTF-8")
			}
			if !strings.HasPrefix(got, CommentMarker) {
				t.Error("comment lost its marker")
			}
			if !strings.Contains(got, "| routes | 2 | 2 | 0 |") {
				t.Error("comment lost the counts table")
			}
			assertClosedMarkdown(t, got)
		})
	}
}

func TestTruncateMarkdown(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 300)
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "a\nb\n", 4, "a\nb\n"},
		{"cut in a fence", "x\n```go\nfunc f() {}\n" + long + "\n```\n", 20 + 4 + len(truncatedNote), "x\n```go\nfunc f() {}\n```\n" + truncatedNote},
		{"cut in details", "<details>\n<summary>s</summary>\n\n" + long + "\n</details>\n", 32 + len(truncatedNote) + len("\n</details>\n"), "<details>\n<summary>s</summary>\n\n" + truncatedNote + "\n</details>\n"},
		{"details inside a fence do not count", "```\n<details>\n```\n" + long + "\n", 18 + len(truncatedNote), "```\n<details>\n```\n" + truncatedNote},
		{"tilde fence closed by tildes only", "~~~~\n```\nin\n" + long + "\n~~~~\n", 12 + 5 + len(truncatedNote), "~~~~\n```\nin\n~~~~\n" + truncatedNote},
		{"fits but leaves a fence open", "a\n```\ncode\n", 100, "a\n```\ncode\n```\n" + truncatedNote},
		{"too small for anything", "line\nline\n", 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := truncateMarkdown(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("truncateMarkdown(%q, %d) =\n%q\nwant\n%q", tc.in, tc.max, got, tc.want)
			}
			if len(got) > tc.max {
				t.Errorf("result %d bytes over %d", len(got), tc.max)
			}
		})
	}
}

func FuzzTruncateMarkdown(f *testing.F) {
	f.Add(realisticPlan(1<<20), 700)
	f.Add("```\n<details>\n```\n<details>\n~~~\nx\n", 150)
	f.Add("<details><details>\n\n</details>\n", 120)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<20 {
			return
		}
		got := truncateMarkdown(s, max)
		if len(got) > max {
			t.Fatalf("%d bytes over %d", len(got), max)
		}
		var in mdState
		in.text(s)
		if len(s) <= max && in.closed() {
			if got != s {
				t.Fatal("changed well-formed input that fits")
			}
			return
		}
		if got == "" {
			return
		}
		var st mdState
		st.text(got)
		if !st.closed() {
			t.Fatalf("left open: fence %q details %d in %q", st.fence, st.details, got)
		}
	})
}

func TestInlineHelpers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, got, want string
	}{
		{"escape html and table", escapeInline("a <b>|c</b>\nd"), `a &lt;b&gt;\|c&lt;/b&gt; d`},
		{"code span with backticks", codeSpan("a`b"), "``a`b``"},
		{"code span edge backtick", codeSpan("`a"), "`` `a ``"},
		{"clip runes", clip("héllo wörld", 5), "héll…"},
		{"clip one line", clip("a\n  b", 10), "a b"},
		{"redact url credentials", redact("fetch https://x-access-token:ghs_abc@github.com/a/b failed"), "fetch https://***@github.com/a/b failed"},
		{"shell word plain", shellWord("gateway/config"), "gateway/config"},
		{"shell word quoted", shellWord("it's here"), `'it'\''s here'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
