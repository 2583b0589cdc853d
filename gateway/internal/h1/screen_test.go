package h1

import (
	"net/textproto"
	"testing"
)

// canonicalKey agrees with textproto for every spelling, and a common
// name costs no allocation whatever its case. Not parallel: AllocsPerRun.
func TestCanonicalKey(t *testing.T) {
	tests := []struct {
		name, in string
		allocs   float64
	}{
		{name: "canonical common", in: "Content-Type"},
		{name: "odd-case common", in: "X-API-Key"},
		{name: "lower-case common", in: "x-forwarded-for"},
		{name: "uncommon", in: "x-my-header", allocs: 1},
		{name: "long uncommon", in: "x-a-very-long-header-name-beyond-the-buffer", allocs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := canonicalKey(tc.in), textproto.CanonicalMIMEHeaderKey(tc.in); got != want {
				t.Fatalf("canonicalKey(%q) = %q, want %q", tc.in, got, want)
			}
			if n := testing.AllocsPerRun(100, func() { _ = canonicalKey(tc.in) }); n > tc.allocs {
				t.Fatalf("%v allocations, want at most %v", n, tc.allocs)
			}
		})
	}
}
