package router

import (
	"path"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"root", "/", "/", true},
		{"clean", "/api/v1/items", "/api/v1/items", true},
		{"trailing slash kept", "/api/", "/api/", true},
		{"dot dot escapes prefix", "/public/../admin", "/admin", true},
		{"dot dot above root", "/../../etc/passwd", "/etc/passwd", true},
		{"dot segment", "/a/./b", "/a/b", true},
		{"final dot", "/a/.", "/a/", true},
		{"final dot dot", "/a/b/..", "/a/", true},
		{"only dot dot", "/..", "/", true},
		{"merged slashes", "//a///b//", "/a/b/", true},
		{"double slash root", "//", "/", true},
		{"dots in names stay", "/a/.b/..c/...", "/a/.b/..c/...", true},
		{"dot dot after merge", "/a//..//b", "/b", true},
		{"backslash refused", "/public/..\\admin", "", false},
		{"nul refused", "/a\x00b", "", false},
		{"asterisk unchanged", "*", "*", true},
		{"empty unchanged", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := CleanPath(tc.in)
			if ok != tc.ok || ok && got != tc.want {
				t.Fatalf("CleanPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCleanPathDoesNotAllocateForCleanPaths(t *testing.T) {
	p := "/api/v1/items/42/"
	if n := testing.AllocsPerRun(100, func() { CleanPath(p) }); n != 0 {
		t.Fatalf("%v allocations for a clean path", n)
	}
}

// A path with thousands of ".." segments costs its two allocations (the
// cleaned bytes and their string), not a copy of the path so far for each
// "..": that was quadratic, 56 ms of CPU for one 60 KiB path through the
// gateway and 9 s for a 1 MiB one on net/http.
func TestCleanPathDotDotIsLinear(t *testing.T) {
	p := "/" + strings.Repeat("a", 20000) + strings.Repeat("/x/..", 8000)
	got, ok := CleanPath(p)
	if want := "/" + strings.Repeat("a", 20000) + "/"; !ok || got != want {
		t.Fatalf("CleanPath = %d bytes, %v; want %d bytes", len(got), ok, len(want))
	}
	if n := testing.AllocsPerRun(5, func() { CleanPath(p) }); n > 2 {
		t.Fatalf("%v allocations for %d bytes of \"..\" segments, want at most 2", n, 5*8000)
	}
}

func TestSafeEscapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw string
		want      bool
	}{
		{"no escapes", "/a/b", true},
		{"space", "/a%20b", true},
		{"encoded dot", "/a/%2e%2e/b", true},
		{"encoded slash", "/a%2Fb", false},
		{"encoded slash lower", "/a%2fb", false},
		{"encoded backslash", "/a%5Cb", false},
		{"encoded nul", "/a%00b", false},
		{"truncated escape", "/a%2", false},
		{"bad hex", "/a%zzb", false},
		{"percent at end", "/a%", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := SafeEscapes(tc.raw); got != tc.want {
				t.Fatalf("SafeEscapes(%q) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

// FuzzCleanPath checks CleanPath against path.Clean (which drops trailing
// slashes) and the properties the router relies on.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x//", "/a/./", "/..", "/a/b/..", "/.a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := CleanPath(p)
		if !ok {
			if !strings.ContainsAny(p, "\\\x00") {
				t.Fatalf("CleanPath(%q) refused a path without backslash or NUL", p)
			}
			return
		}
		if p == "" || p[0] != '/' {
			if got != p {
				t.Fatalf("CleanPath(%q) = %q, want it unchanged", p, got)
			}
			return
		}
		if !isClean(got) || got[0] != '/' {
			t.Fatalf("CleanPath(%q) = %q is not clean", p, got)
		}
		if again, _ := CleanPath(got); again != got {
			t.Fatalf("CleanPath not idempotent: %q -> %q -> %q", p, got, again)
		}
		if want := strings.TrimSuffix(path.Clean(p), "/"); strings.TrimSuffix(got, "/") != want {
			t.Fatalf("CleanPath(%q) = %q, path.Clean gives %q", p, got, path.Clean(p))
		}
	})
}
