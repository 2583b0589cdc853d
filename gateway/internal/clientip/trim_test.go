package clientip

import (
	"strings"
	"testing"
)

var bracketSeeds = []string{"", "[", "]", "[]", "[::1]", "[[::1]]", "]x[", "127.0.0.1", "[fe80::1%eth0]", "[::ffff:1.2.3.4]"}

// trimBrackets is strings.Trim(s, "[]").
func TestTrimBrackets(t *testing.T) {
	t.Parallel()
	for _, s := range bracketSeeds {
		if got, want := trimBrackets(s), strings.Trim(s, "[]"); got != want {
			t.Errorf("trimBrackets(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzTrimBrackets(f *testing.F) {
	for _, s := range bracketSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := trimBrackets(s), strings.Trim(s, "[]"); got != want {
			t.Fatalf("trimBrackets(%q) = %q, want %q", s, got, want)
		}
	})
}
