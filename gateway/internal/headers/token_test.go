package headers

import (
	"net/textproto"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// IsToken's table holds to x/net's token rule for every byte, alone and
// inside a name.
func TestIsToken(t *testing.T) {
	t.Parallel()
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "X-" + string([]byte{byte(c)}) + "-Y"} {
			if got, want := IsToken(s), httpguts.ValidHeaderFieldName(s); got != want {
				t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
			}
		}
	}
	if IsToken("") {
		t.Error(`IsToken("") = true, want false`)
	}
}

// CanonicalToken agrees with IsToken, and calls canonical exactly the
// names that textproto.CanonicalMIMEHeaderKey leaves as they are.
func TestCanonicalToken(t *testing.T) {
	t.Parallel()
	for _, k := range []string{
		"Content-Type", "content-type", "X-Api-Key", "X-API-Key", "Te", "TE", "A", "a", "X--Y",
		"X-1a", "X_foo", "x_Foo", "-Lead", "Trail-", "Www-Authenticate", "", "Bad Name", "Bad:Name", "é",
	} {
		check(t, k)
	}
}

func FuzzCanonicalToken(f *testing.F) {
	for _, k := range []string{"Content-Type", "content-type", "X-API-Key", "X_foo", "Bad Name"} {
		f.Add(k)
	}
	f.Fuzz(check)
}

func check(t *testing.T, k string) {
	token, canonical := CanonicalToken(k)
	if token != IsToken(k) {
		t.Fatalf("CanonicalToken(%q) token = %v, IsToken says %v", k, token, !token)
	}
	if want := token && textproto.CanonicalMIMEHeaderKey(k) == k; canonical != want {
		t.Fatalf("CanonicalToken(%q) canonical = %v, want %v", k, canonical, want)
	}
}
