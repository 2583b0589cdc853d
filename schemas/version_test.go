package schemas

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    string
		ok   bool
	}{
		{"git sha", "0123456789abcdef0123456789abcdef01234567", true},
		{"etcd revision", "1234", true},
		{"object digest", "sha256-ab12.v2_x", true},
		{"longest", strings.Repeat("a", MaxVersionLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxVersionLen+1), false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"hidden", ".abc", false},
		{"slash", "a/b", false},
		{"traversal", "../../etc/passwd", false},
		{"backslash", `a\b`, false},
		{"leading dash", "-rf", false},
		{"space", "a b", false},
		{"colon", "sha256:ab", false},
		{"nul", "a\x00b", false},
		{"non-ascii", "é", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckVersion(tc.v)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckVersion(%q) = %v, want ok %v", tc.v, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadVersion) {
				t.Fatalf("error %v does not wrap ErrBadVersion", err)
			}
		})
	}
}
