package h1

import (
	"net/url"
	"reflect"
	"testing"
)

var targetSeeds = []string{
	"/", "/a", "/bench/x", "/a/b/c?x=1&y=2", "/p?", "/p??", "/p?a?b", "/?", "//double", "///triple",
	"/a;b=c,d", "/$&+,:;=@", "/-._~", "/a%20b", "/a%2Fb", "/a b", "/a*b", "/a(b)", "/a!b", "/a'b",
	"/caf\u00e9", "/a#frag", "/q?a=%zz&b=;", "/q?x=\x01", "/q?x=\x7f", "/\x00", "*", "", "http://h/p",
	"h:80", "/a?b#c", "/%", "/a?%", "/[x]", "/a\\b", "/a|b", "/a^b", "/a`b", "/a{b}",
}

// parseOriginForm, where it answers, gives exactly url.ParseRequestURI's
// URL; for the targets it leaves alone, the fallback answers.
func TestParseOriginFormMatchesNetURL(t *testing.T) {
	t.Parallel()
	fast := 0
	for _, s := range targetSeeds {
		var u url.URL
		if !parseOriginForm(s, &u) {
			continue
		}
		fast++
		want, err := url.ParseRequestURI(s)
		if err != nil {
			t.Errorf("%q: parsed, but url.ParseRequestURI refuses it: %v", s, err)
			continue
		}
		if !reflect.DeepEqual(&u, want) {
			t.Errorf("%q: got %#v, want %#v", s, u, *want)
		}
	}
	// The common targets take the fast path; they are what it is for.
	for _, s := range []string{"/", "/bench/x", "/a/b/c?x=1&y=2", "/p?", "/q?a=%zz&b=;"} {
		if !parseOriginForm(s, new(url.URL)) {
			t.Errorf("%q: left to url.ParseRequestURI", s)
		}
	}
	if fast == 0 {
		t.Fatal("no seed took the fast path")
	}
}

func FuzzParseOriginForm(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var u url.URL
		if !parseOriginForm(s, &u) {
			return
		}
		want, err := url.ParseRequestURI(s)
		if err != nil {
			t.Fatalf("%q: parsed, but url.ParseRequestURI refuses it: %v", s, err)
		}
		if !reflect.DeepEqual(&u, want) {
			t.Fatalf("%q: got %#v, want %#v", s, u, *want)
		}
	})
}
