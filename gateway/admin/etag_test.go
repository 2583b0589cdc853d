package admin

import (
	"testing"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

func TestETagListMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		version string
		want    bool
	}{
		{name: "exact", header: `"abc"`, version: "abc", want: true},
		{name: "other", header: `"abd"`, version: "abc"},
		{name: "star", header: `*`, version: "abc", want: true},
		{name: "list with spaces", header: ` "x" ,  "abc" `, version: "abc", want: true},
		{name: "weak", header: `W/"abc"`, version: "abc", want: true},
		{name: "unquoted is not a tag", header: `abc`, version: "abc"},
		{name: "half quoted", header: `"abc`, version: "abc"},
		{name: "empty tag matches empty version only", header: `""`, version: "", want: true},
		{name: "version with a comma", header: `"a,b"`, version: "a,b", want: true},
		{name: "comma inside another tag", header: `"x,abc"`, version: "abc"},
		{name: "star then garbage is not star", header: `*x`, version: "abc"},
		{name: "escaped quote", header: client.ETag(`a"b`), version: `a"b`, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := etagListMatches(tt.header, tt.version); got != tt.want {
				t.Fatalf("etagListMatches(%q, %q) = %v, want %v", tt.header, tt.version, got, tt.want)
			}
		})
	}
}

func FuzzETagListMatches(f *testing.F) {
	f.Add(`"v1", W/"v2"`, "v2")
	f.Add(`*`, "")
	f.Add(`"a\"b"`, `a"b`)
	f.Fuzz(func(t *testing.T, header, version string) {
		_ = etagListMatches(header, version)
		if version == "*" {
			return
		}
		if !etagListMatches(client.ETag(version), version) {
			t.Fatalf("the ETag the server sends for %q does not match it", version)
		}
	})
}
