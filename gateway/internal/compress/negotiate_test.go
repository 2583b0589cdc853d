package compress

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	both := []string{"zstd", "gzip"}
	tests := []struct {
		name string
		ae   []string // Accept-Encoding lines; nil: none
		algs []string
		want string // "": none
	}{
		{"no header", nil, both, ""},
		{"empty header", []string{""}, both, ""},
		{"browser list takes the server's first", []string{"gzip, deflate, br, zstd"}, both, "zstd"},
		{"only gzip", []string{"gzip"}, both, "gzip"},
		{"x-gzip is gzip", []string{"x-gzip"}, both, "gzip"},
		{"case-insensitive", []string{"GZip"}, both, "gzip"},
		{"client q ranks first", []string{"zstd;q=0.5, gzip;q=0.8"}, both, "gzip"},
		{"equal q: server order", []string{"gzip;q=0.5, zstd;q=0.5"}, both, "zstd"},
		{"q=0 refuses", []string{"zstd;q=0, gzip"}, both, "gzip"},
		{"q=0.000 refuses", []string{"zstd;q=0.000, gzip;q=0.001"}, both, "gzip"},
		{"all refused", []string{"zstd;q=0, gzip;q=0"}, both, ""},
		{"star accepts the rest", []string{"*"}, both, "zstd"},
		{"star with q", []string{"br, *;q=0.1"}, both, "zstd"},
		{"star does not override a named q=0", []string{"zstd;q=0, *"}, both, "gzip"},
		{"star q=0 refuses unnamed", []string{"*;q=0"}, both, ""},
		{"identity only", []string{"identity"}, both, ""},
		{"identity;q=0 and nothing we have", []string{"identity;q=0, br"}, both, ""},
		{"identity;q=0 with gzip", []string{"identity;q=0, gzip"}, both, "gzip"},
		{"spaces around", []string{"  gzip ; q=0.9 ,  zstd ; q=1  "}, both, "zstd"},
		{"several lines", []string{"br", "gzip;q=0.3"}, both, "gzip"},
		{"malformed q ignores the element", []string{"zstd;q=2, gzip;q=0.5"}, both, "gzip"},
		{"q with four decimals is malformed", []string{"zstd;q=0.1234, gzip"}, both, "gzip"},
		{"q=1.000 ok", []string{"gzip;q=1.000"}, both, "gzip"},
		{"q=1.001 malformed", []string{"gzip;q=1.001"}, both, ""},
		{"other parameters ignored", []string{"gzip;level=9"}, both, "gzip"},
		{"server lists gzip first", []string{"zstd, gzip"}, []string{"gzip", "zstd"}, "gzip"},
		{"server offers gzip only", []string{"zstd"}, []string{"gzip"}, ""},
		{"empty elements", []string{",,gzip,,"}, both, "gzip"},
		{"non-token name", []string{"gz ip, zstd"}, both, "zstd"},
		{"highest of repeated names", []string{"gzip;q=0.1, gzip;q=0.9, zstd;q=0.5"}, both, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			if i := negotiate(tc.ae, tc.algs); i >= 0 {
				got = tc.algs[i]
			}
			if got != tc.want {
				t.Fatalf("negotiate(%q, %v) = %q, want %q", tc.ae, tc.algs, got, tc.want)
			}
		})
	}
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "zstd;q=0.5, gzip;q=0.8", "*;q=0", "identity;q=0, *", "x-gzip;q=1.000", ";;,;q=", "gzip;q=0.", "GZIP;Q=1"} {
		f.Add(s)
	}
	algs := []string{"zstd", "gzip"}
	f.Fuzz(func(t *testing.T, ae string) {
		i := negotiate([]string{ae}, algs)
		if i < -1 || i >= len(algs) {
			t.Fatalf("index %d", i)
		}
		if i >= 0 {
			// What is chosen was named by the client, or by "*".
			l := strings.ToLower(ae)
			if !strings.Contains(l, algs[i]) && !strings.Contains(l, "*") {
				t.Fatalf("chose %s for %q", algs[i], ae)
			}
		}
		// Splitting the header over two lines changes nothing.
		if a, b, ok := strings.Cut(ae, ","); ok {
			if j := negotiate([]string{a, b}, algs); j != i {
				t.Fatalf("%q as two lines chose %d, as one %d", ae, j, i)
			}
		}
	})
}
