package router

import (
	"net/url"
	"testing"
)

func TestCanonicalHost(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{name: "plain", in: "example.com", want: "example.com"},
		{name: "port", in: "example.com:8080", want: "example.com"},
		{name: "upper case", in: "API.Example.COM", want: "api.example.com"},
		{name: "trailing dot", in: "example.com.", want: "example.com"},
		{name: "trailing dot and port", in: "example.com.:443", want: "example.com"},
		{name: "ipv4 with port", in: "127.0.0.1:80", want: "127.0.0.1"},
		{name: "bracketed ipv6 with port", in: "[::1]:80", want: "::1"},
		{name: "bracketed ipv6", in: "[2001:DB8::1]", want: "2001:db8::1"},
		{name: "bare ipv6 keeps its colons", in: "2001:db8::1", want: "2001:db8::1"},
		{name: "empty", in: "", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := canonicalHost(tc.in); got != tc.want {
				t.Fatalf("canonicalHost(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzQueryMatches checks the map-free query scan against url.ParseQuery.
func FuzzQueryMatches(f *testing.F) {
	f.Add("a=1&b=2", "b", "2")
	f.Add("a=%zz&a=1", "a", "1")
	f.Add("k%20x=v+w", "k x", "v w")
	f.Add("a=1;b=2&a=3", "a", "3")
	f.Add("&&a&", "a", "")
	f.Fuzz(func(t *testing.T, raw, name, value string) {
		m := &valueMatcher{name: name, kind: kindExact, exact: value}
		vals, _ := url.ParseQuery(raw)
		want := false
		for _, v := range vals[name] {
			want = want || v == value
		}
		if got := queryMatches(raw, m); got != want {
			t.Fatalf("queryMatches(%q, %q=%q) = %v, url.ParseQuery says %v", raw, name, value, got, want)
		}
		m.kind = kindPresent
		if got, want := queryMatches(raw, m), len(vals[name]) > 0; got != want {
			t.Fatalf("queryMatches(%q, %q present) = %v, url.ParseQuery says %v", raw, name, got, want)
		}
	})
}
