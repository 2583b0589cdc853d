package cache

import (
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want directives
	}{
		{"empty", nil, directives{maxAge: -1, sMaxAge: -1}},
		{"max-age", []string{"max-age=60"}, directives{maxAge: 60, sMaxAge: -1}},
		{"spaces and case", []string{"  Public ,  MAX-AGE = 60 ,S-MAXAGE=5"}, directives{public: true, maxAge: 60, sMaxAge: 5}},
		{"quoted max-age", []string{`max-age="60"`}, directives{maxAge: 60, sMaxAge: -1}},
		{"quoted commas", []string{`private="Set-Cookie, X-A", max-age=7`}, directives{private: true, maxAge: 7, sMaxAge: -1}},
		{"escaped quote", []string{`no-cache="a\", max-age=1", s-maxage=2`}, directives{noCache: true, maxAge: -1, sMaxAge: 2}},
		{"unterminated quote", []string{`private="a, max-age=1`}, directives{private: true, maxAge: -1, sMaxAge: -1}},
		{"bad value is stale", []string{"max-age=1x"}, directives{maxAge: 0, sMaxAge: -1}},
		{"no value is stale", []string{"max-age"}, directives{maxAge: 0, sMaxAge: -1}},
		{"negative is stale", []string{"max-age=-5"}, directives{maxAge: 0, sMaxAge: -1}},
		{"twice is stale", []string{"max-age=5", "max-age=5"}, directives{maxAge: 0, sMaxAge: -1}},
		{"huge is capped", []string{"max-age=99999999999999999999999"}, directives{maxAge: maxDelta, sMaxAge: -1}},
		{"request directives", []string{"no-store, only-if-cached, no-cache"}, directives{noStore: true, onlyIfCached: true, noCache: true, maxAge: -1, sMaxAge: -1}},
		{"revalidate", []string{"must-revalidate, proxy-revalidate"}, directives{mustRevalidate: true, proxyRevalidate: true, maxAge: -1, sMaxAge: -1}},
		{"unknown ignored", []string{"stale-while-revalidate=30, immutable"}, directives{maxAge: -1, sMaxAge: -1}},
		{"empty members", []string{",,, ,max-age=3,,"}, directives{maxAge: 3, sMaxAge: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseCacheControl(tt.in); got != tt.want {
				t.Errorf("parseCacheControl(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a, b", s-maxage=1`, `no-cache="\"`, "=,=", `"`, "max-age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseCacheControl([]string{s})
		for _, v := range []int64{d.maxAge, d.sMaxAge} {
			if v < -1 || v > maxDelta {
				t.Fatalf("parseCacheControl(%q): age %d out of range", s, v)
			}
		}
	})
}
