package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestSuggester: the defined names are listed once, on the first unknown
// reference; the first MaxSuggestions references get a suggestion, the
// rest the plain message; with five names or fewer they are always listed.
func TestSuggester(t *testing.T) {
	t.Parallel()
	listed := 0
	names := []string{"billing", "orders", "search", "shipping", "users", "web"}
	s := NewSuggester("upstream", "upstreams", func() []string { listed++; return names })
	if listed != 0 {
		t.Fatal("names listed before any unknown reference")
	}
	for i := range MaxSuggestions + 5 {
		got := s.Unknown("orderz")
		want := `unknown upstream "orderz" (did you mean "orders"?)`
		if i >= MaxSuggestions {
			want = `unknown upstream "orderz"`
		}
		if got != want {
			t.Fatalf("reference %d: %q, want %q", i, got, want)
		}
	}
	if listed != 1 {
		t.Fatalf("names listed %d times, want once", listed)
	}
	few := NewSuggester("policy", "policies", func() []string { return []string{"a", "b"} })
	for range MaxSuggestions + 1 {
		if got := few.Unknown("zzzz"); !strings.Contains(got, "defined policies: a, b") {
			t.Fatalf("%q does not list the two policies", got)
		}
	}
}

// BenchmarkFailoverMany: a valid config of n upstreams with targets and n
// failover upstreams. Listing and sorting every plain upstream for each
// failover upstream made it quadratic: 6.9 s for a 292 KB config.
func BenchmarkFailoverMany(b *testing.B) {
	const n = 5000
	ups := make(map[string]schemas.Upstream, 2*n)
	for i := range n {
		ups[fmt.Sprintf("p%d", i)] = schemas.Upstream{Targets: []string{"http://a"}}
		ups[fmt.Sprintf("f%d", i)] = schemas.Upstream{Failover: &schemas.Failover{Groups: []string{fmt.Sprintf("p%d", i)}}}
	}
	for b.Loop() {
		for _, u := range ups {
			if u.Failover != nil {
				if v := Failover(*u.Failover, ups); len(v) > 0 {
					b.Fatal(v)
				}
			}
		}
	}
}

// TestTemplateParamsBounded: a path or rewrite template may have
// MaxTemplateParams parameters, not one more.
func TestTemplateParamsBounded(t *testing.T) {
	t.Parallel()
	tmpl := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "/{p%d}", i)
		}
		return b.String()
	}
	for _, c := range []struct {
		name  string
		check func(string) ([]string, error)
	}{{"path", PathTemplate}, {"rewrite", RewriteTemplate}} {
		if names, err := c.check(tmpl(MaxTemplateParams)); err != nil || len(names) != MaxTemplateParams {
			t.Errorf("%s template of %d parameters: %d names, %v", c.name, MaxTemplateParams, len(names), err)
		}
		if _, err := c.check(tmpl(MaxTemplateParams + 1)); err == nil || !strings.Contains(err.Error(), "more than 64 parameters") {
			t.Errorf("%s template of %d parameters: %v, want refused", c.name, MaxTemplateParams+1, err)
		}
	}
}
