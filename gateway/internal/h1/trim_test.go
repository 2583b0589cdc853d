package h1

import (
	"strings"
	"testing"
)

var trimSeeds = []string{"", " ", "\t", "v", " v ", "\tv\t", " \t v \t ", "v\r", " v\r ", "\rv", "a b", " a\tb ", "\v v \v", "\u00a0v\u00a0"}

// trimOWS is strings.Trim(v, " \t"): spaces and tabs only, so a CR or
// another control character at an end stays for the value check to refuse.
func TestTrimOWS(t *testing.T) {
	t.Parallel()
	for _, v := range trimSeeds {
		if got, want := trimOWS(v), strings.Trim(v, " \t"); got != want {
			t.Errorf("trimOWS(%q) = %q, want %q", v, got, want)
		}
	}
}

func FuzzTrimOWS(f *testing.F) {
	for _, v := range trimSeeds {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := trimOWS(v), strings.Trim(v, " \t"); got != want {
			t.Fatalf("trimOWS(%q) = %q, want %q", v, got, want)
		}
	})
}
