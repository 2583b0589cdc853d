package cache

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestVaryKeyIndexMatchesScan: with more than varyScanMax Vary names the
// request header is indexed by CGI name once; the keys are the same as a
// walk per name makes, spellings with "_" and in other cases included,
// whatever the number of names.
func TestVaryKeyIndexMatchesScan(t *testing.T) {
	t.Parallel()
	names := []string{"X-Tenant", "X_Tenant", "x_tenant", "X-TENANT", "Accept", "accept", "X-A", "X_a", "X-B", "Accept-Encoding", "Accept_Encoding", "X-Tenants", "User-Agent"}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		h := http.Header{}
		for range r.IntN(8) {
			h[names[r.IntN(len(names))]] = []string{strconv.Itoa(r.IntN(3)), " v "}
		}
		var vs []string
		for range 1 + r.IntN(2*varyScanMax+2) {
			vs = append(vs, names[r.IntN(len(names))])
		}
		vary, _ := parseVary([]string{strings.Join(vs, ", ")})
		if got, want := varyKeyBy(vary, h, true), varyKeyBy(vary, h, false); got != want {
			t.Fatalf("case %d, Vary %v, header %v:\ngot  %q\nwant %q", i, vary, h, got, want)
		}
	}
}

// BenchmarkVaryKeyHostile: a stored answer varying on thousands of names
// and a request with thousands of headers. A walk per name was quadratic
// under the store's lock: 0.9 s for 6,000 and 6,000.
func BenchmarkVaryKeyHostile(b *testing.B) {
	h := http.Header{}
	var vs []string
	for i := range 3000 {
		h["X-H"+strconv.Itoa(i)] = []string{"v"}
		vs = append(vs, "X-V"+strconv.Itoa(i))
	}
	vary, _ := parseVary([]string{strings.Join(vs, ",")})
	for _, c := range []struct {
		name string
		key  func([]string, http.Header) string
	}{
		{"indexed", func(v []string, h http.Header) string { return varyKeyBy(v, h, true) }},
		{"walk-per-name", func(v []string, h http.Header) string { return varyKeyBy(v, h, false) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_ = c.key(vary, h)
			}
		})
	}
}
