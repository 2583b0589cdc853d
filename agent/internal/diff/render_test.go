package diff

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// realisticOld is the config of a main branch: a 90/10 canary, a legacy
// reports service, a rate limit and API keys.
func realisticOld() *schemas.Config {
	return defaulted(schemas.Config{
		Upstreams: map[string]schemas.Upstream{
			"stable": {Targets: []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}},
			"canary": {Targets: []string{"http://10.0.1.1:8080"}},
			"legacy": {Targets: []string{"http://10.0.9.9:8080"}, HealthCheck: &schemas.HealthCheck{}},
		},
		Routes: map[string]schemas.Route{
			"web": {
				Match:    schemas.Match{Hosts: []string{"www.example.com"}},
				Backends: []schemas.Backend{{Upstream: "stable", Weight: 90}, {Upstream: "canary", Weight: 10}},
				Split:    &schemas.Split{HashOn: schemas.HashOn{Cookie: "ab"}},
			},
			"reports": {
				Match:    schemas.Match{Hosts: []string{"www.example.com"}, Path: "/reports"},
				Backends: []schemas.Backend{{Upstream: "legacy", Weight: 100}},
			},
			"admin": {
				Match:    schemas.Match{Hosts: []string{"admin.example.com"}},
				Backends: []schemas.Backend{{Upstream: "legacy", Weight: 100}},
				Policies: []string{"office"},
			},
		},
		Policies: map[string]schemas.Policy{
			"ratelimit": {RateLimit: &schemas.RateLimit{Rate: 100}},
			"api-keys":  {APIKey: &schemas.APIKey{Keys: map[string]string{"ci": "sha256:" + strings.Repeat("a", 64)}}},
			"office":    {IPAllow: &schemas.IPList{CIDRs: []string{"192.0.2.0/24"}}},
		},
	})
}

// realisticNew is the config of a pull request against realisticOld:
// weights shifted 90/10 -> 75/25, a rate limit attached, a new API route,
// the legacy upstream and the admin route removed.
func realisticNew() *schemas.Config {
	return defaulted(schemas.Config{
		Upstreams: map[string]schemas.Upstream{
			"stable": {Targets: []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}},
			"canary": {Targets: []string{"http://10.0.1.1:8080", "http://10.0.1.2:8080"}},
			"api":    {Targets: []string{"http://10.0.2.1:9000"}, Balance: schemas.BalanceLeastRequests},
		},
		Routes: map[string]schemas.Route{
			"web": {
				Match:          schemas.Match{Hosts: []string{"www.example.com"}},
				Backends:       []schemas.Backend{{Upstream: "stable", Weight: 75}, {Upstream: "canary", Weight: 25}},
				Split:          &schemas.Split{HashOn: schemas.HashOn{Cookie: "ab"}},
				Policies:       []string{"ratelimit"},
				Timeout:        schemas.Duration(10 * time.Second),
				RequestHeaders: &schemas.HeaderOps{Set: map[string]string{"X-Canary-Phase": "2", "Authorization": "Bearer not-for-logs"}},
			},
			"reports": {
				Match:    schemas.Match{Hosts: []string{"www.example.com"}, Path: "/reports"},
				Backends: []schemas.Backend{{Upstream: "stable", Weight: 100}},
				Rewrite:  &schemas.Rewrite{StripPrefix: "/reports"},
			},
			"api": {
				Match:    schemas.Match{Hosts: []string{"api.example.com"}, Path: "/v1", Methods: []string{"GET", "POST"}},
				Backends: []schemas.Backend{{Upstream: "api", Weight: 100}},
				Policies: []string{"api-keys", "ratelimit"},
			},
		},
		Policies: map[string]schemas.Policy{
			"ratelimit": {RateLimit: &schemas.RateLimit{Rate: 50, Burst: 100}},
			"api-keys": {APIKey: &schemas.APIKey{Keys: map[string]string{
				"ci":     "sha256:" + strings.Repeat("b", 64),
				"deploy": "sha256:" + strings.Repeat("c", 64),
			}}},
			"jwt": {JWT: &schemas.JWT{Issuer: "https://auth.example.com", Algorithms: []string{"HS256"}, Secret: &schemas.SecretRef{Env: "JWT_SECRET"}}},
		},
	})
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestGolden(t *testing.T) {
	p := Compute(realisticOld(), realisticNew())
	js, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "realistic.txt.golden", p.Text())
	golden(t, "realistic.md.golden", p.Markdown(65536))
	golden(t, "realistic.json.golden", string(js))
	golden(t, "empty.md.golden", Compute(realisticNew(), realisticNew()).Markdown(65536))
}

// checkBalanced fails when md leaves a <details> or a code fence open, or
// closes one that was never opened.
func checkBalanced(t *testing.T, md string) {
	t.Helper()
	depth, fenceOpen := 0, ""
	for _, line := range strings.Split(md, "\n") {
		if fenceOpen != "" {
			if strings.TrimRight(line, " ") == fenceOpen {
				fenceOpen = ""
			}
			continue
		}
		if strings.HasPrefix(line, "```") {
			fenceOpen = strings.TrimRight(line, "abcdefghijklmnopqrstuvwxyz")
			continue
		}
		depth += strings.Count(line, "<details>") - strings.Count(line, "</details>")
		if depth < 0 {
			t.Fatalf("</details> without <details> in:\n%s", md)
		}
	}
	if depth != 0 || fenceOpen != "" {
		t.Fatalf("unbalanced markdown (details depth %d, open fence %q):\n%s", depth, fenceOpen, md)
	}
}

var leftOutRe = regexp.MustCompile(`_… (\d+) more change\(s\) not shown`)

// bigPlan creates n routes, each with a few fields.
func bigPlan(n int) *Plan {
	cfg := schemas.Config{Routes: map[string]schemas.Route{}}
	for i := range n {
		r := route(fmt.Sprintf("h%d.example.com", i), be("s", 100))
		r.Policies = []string{"a", "b"}
		cfg.Routes[fmt.Sprintf("r%04d", i)] = r
	}
	return Compute(nil, defaulted(cfg))
}

func TestMarkdownBudget(t *testing.T) {
	t.Parallel()
	p := bigPlan(500)
	full := p.Markdown(0)
	tests := []struct {
		name      string
		maxBytes  int
		truncated bool
	}{
		{name: "no bound", maxBytes: 0},
		{name: "ample", maxBytes: len(full) + 1},
		{name: "exact", maxBytes: len(full)},
		{name: "one byte short", maxBytes: len(full) - 1, truncated: true},
		{name: "github comment limit", maxBytes: 65536, truncated: true},
		{name: "small", maxBytes: 2000, truncated: true},
		{name: "just the table", maxBytes: 400, truncated: true},
		{name: "below the table", maxBytes: 60, truncated: true},
		{name: "tiny", maxBytes: 5, truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := p.Markdown(tt.maxBytes)
			if tt.maxBytes > 0 && len(md) > tt.maxBytes {
				t.Fatalf("len = %d, over the budget %d", len(md), tt.maxBytes)
			}
			checkBalanced(t, md)
			if !tt.truncated {
				if md != full {
					t.Fatal("output differs from the unbounded rendering")
				}
				return
			}
			if tt.maxBytes < 400 {
				return // only the headline fits
			}
			m := leftOutRe.FindStringSubmatch(md)
			if m == nil && strings.Contains(md, "more field(s) not shown") {
				// Only the last change was cut, inside its own section.
				if n := strings.Count(md, "<details>"); n != len(p.Changes) {
					t.Errorf("no change said to be left out, yet %d of %d shown", n, len(p.Changes))
				}
				return
			}
			if m == nil {
				t.Fatalf("truncated output does not say what was left out:\n%s", md[max(0, len(md)-300):])
			}
			left, _ := strconv.Atoi(m[1])
			shown := strings.Count(md, "<details>")
			if shown+left != len(p.Changes) {
				t.Errorf("shown %d + left out %d != %d changes", shown, left, len(p.Changes))
			}
		})
	}
}

func TestMarkdownPartialChange(t *testing.T) {
	t.Parallel()
	// One change with many fields: truncation happens inside its section.
	keys := map[string]string{}
	for i := range 300 {
		keys[fmt.Sprintf("consumer-%03d", i)] = "sha256:" + strings.Repeat("d", 64)
	}
	p := Compute(nil, &schemas.Config{Policies: map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{Keys: keys}}}})
	md := p.Markdown(3000)
	if len(md) > 3000 {
		t.Fatalf("len = %d, over budget", len(md))
	}
	checkBalanced(t, md)
	if !strings.Contains(md, "more field(s) not shown") {
		t.Errorf("partial section does not say fields were left out:\n%s", md)
	}
	if strings.Contains(md, "more change(s) not shown") {
		t.Errorf("the only change was shown, yet the note says changes were left out:\n%s", md)
	}
}

func FuzzMarkdown(f *testing.F) {
	f.Add("web", "x```y", "<b>", 800)
	f.Add("a`b", "val\nue", "", 65536)
	f.Add("r", "", "</details>", 100)
	f.Fuzz(func(t *testing.T, name, value, header string, budget int) {
		budget %= 20000
		r := route("a", be("s", 100))
		r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"X-V": value, header: value}}
		r.Rewrite = &schemas.Rewrite{Path: value + "````"}
		cfg := &schemas.Config{Routes: map[string]schemas.Route{name: r, name + "2": r}}
		p := Compute(nil, cfg)
		md := p.Markdown(budget)
		if budget > 0 && len(md) > budget {
			t.Fatalf("len = %d, over the budget %d", len(md), budget)
		}
		checkBalanced(t, md)
		for _, s := range []string{"<details>", "</details>", "<b>", "</b>", "<code>", "</code>"} {
			if strings.Count(md, s) != strings.Count(p.Markdown(0), s) && budget <= 0 {
				t.Fatalf("tag %s count differs", s)
			}
		}
		if strings.Contains(name, "<") && strings.Contains(md, name) {
			t.Fatalf("name %q rendered without HTML escaping", name)
		}
	})
}

// BenchmarkCompute10kRoutes diffs two 10,000-route configs where every
// changed-th route's weights shifted, and renders the bounded markdown.
func BenchmarkCompute10kRoutes(b *testing.B) {
	mk := func(w, every int) *schemas.Config {
		c := schemas.Config{Routes: map[string]schemas.Route{}}
		for i := range 10000 {
			wi := 90
			if i%every == 0 {
				wi = w
			}
			c.Routes[fmt.Sprintf("r%05d", i)] = route(fmt.Sprintf("h%d.example.com", i), be("stable", wi), be("canary", 100-wi))
		}
		return defaulted(c)
	}
	for _, every := range []int{1, 100} {
		b.Run(fmt.Sprintf("changed=1in%d", every), func(b *testing.B) {
			old, new := mk(90, every), mk(75, every)
			b.ReportAllocs()
			for b.Loop() {
				p := Compute(old, new)
				_ = p.Markdown(65536)
			}
		})
	}
}
