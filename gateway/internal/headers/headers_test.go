package headers

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestSameCGIName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "same", a: "X-Consumer", b: "X-Consumer", want: true},
		{name: "underscore", a: "X_consumer", b: "X-Consumer", want: true},
		{name: "lower case", a: "x_consumer", b: "X-Consumer", want: true},
		{name: "mixed", a: "X-User_id", b: "X-User-Id", want: true},
		{name: "other name", a: "X-Consumers", b: "X-Consumer"},
		{name: "other letter", a: "X-Consumor", b: "X-Consumer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SameCGIName(tt.a, tt.b); got != tt.want {
				t.Fatalf("SameCGIName(%q, %q) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestDeleteAllAndAliases(t *testing.T) {
	t.Parallel()
	h := http.Header{"X-Consumer": {"a"}, "X_consumer": {"b"}, "X-Consumer_": {"c"}, "X-Forwarded-For": {"d"}, "X_forwarded_for": {"e"}, "Other": {"f"}}
	DeleteAll(h, "X-Consumer")
	DeleteAliases(h, []string{"X-Forwarded-For"})
	want := http.Header{"X-Consumer_": {"c"}, "X-Forwarded-For": {"d"}, "Other": {"f"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
}

func TestStripConnectionListed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{name: "no connection", in: http.Header{"X-Consumer": {"a"}}, want: http.Header{"X-Consumer": {"a"}}},
		{name: "options only", in: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}},
			want: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "a named header", in: http.Header{"Connection": {"close, X-Consumer"}, "X-Consumer": {"a"}, "X_consumer": {"b"}},
			want: http.Header{"Connection": {"close"}}},
		{name: "te is left to the proxy", in: http.Header{"Connection": {"TE, x-user-id"}, "Te": {"trailers"}, "X-User-Id": {"u"}},
			want: http.Header{"Connection": {"TE"}, "Te": {"trailers"}}},
		{name: "only named headers", in: http.Header{"Connection": {"X-A", "X-B"}, "X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"}},
			want: http.Header{"X-C": {"3"}}},
		{name: "every spelling of a named header", in: http.Header{"Connection": {"x_consumer"}, "X-Consumer": {"a"}, "x-consumer": {"b"}, "X_CONSUMER": {"c"}, "X-Consumers": {"d"}},
			want: http.Header{"X-Consumers": {"d"}}},
		{name: "a repeated option", in: http.Header{"Connection": {"X-A, x-a, X_A", "X-A"}, "X-A": {"1"}, "X_a": {"2"}, "X-B": {"3"}},
			want: http.Header{"X-B": {"3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			StripConnectionListed(tt.in)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Fatalf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}

// DeleteAllOf removes what DeleteAll removes for each name in turn.
func TestDeleteAllOf(t *testing.T) {
	t.Parallel()
	in := http.Header{"X-Tenant": {"a"}, "X_tenant": {"b"}, "x-tenant": {"c"}, "X-Debug": {"d"}, "X_DEBUG": {"e"}, "Accept": {"f"}, "X-Tenants": {"g"}}
	for _, names := range [][]string{nil, {"X-Tenant"}, {"X-Tenant", "X-Debug"}, {"X-Debug", "Accept", "X-Nothing"}} {
		got, want := in.Clone(), in.Clone()
		DeleteAllOf(got, names)
		for _, n := range names {
			DeleteAll(want, n)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DeleteAllOf(%v) left %v, want %v", names, got, want)
		}
	}
}

func TestEqualFoldASCII(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a, b string
		want bool
	}{
		{"same", "keep-alive", "keep-alive", true},
		{"other case", "Keep-ALIVE", "keep-alive", true},
		{"other length", "close ", "close", false},
		{"punctuation is not folded", "text_event", "text-event", false},
		{"only ASCII letters fold", "é", "É", false},
		{"a byte past Z", "[", "{", false},
		{"empty", "", "", true},
	} {
		if got := EqualFoldASCII(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: EqualFoldASCII(%q, %q) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
	}
}

// TestRecycle: a pooled header map comes back cleared, the same map while
// it stayed small, a new one once it held more than MaxPooledFields names
// at the end or at its peak.
func TestRecycle(t *testing.T) {
	t.Parallel()
	filled := func(n int) http.Header {
		h := http.Header{}
		for i := range n {
			h[fmt.Sprintf("X-F%d", i)] = []string{"v"}
		}
		return h
	}
	tests := []struct {
		name     string
		fields   int
		peak     int
		wantSame bool
	}{
		{name: "nil", wantSame: false},
		{name: "small", fields: 5, peak: 5, wantSame: true},
		{name: "at the bound", fields: MaxPooledFields, wantSame: true},
		{name: "past the bound", fields: MaxPooledFields + 1, wantSame: false},
		{name: "past the bound at its peak only", fields: 3, peak: 5000, wantSame: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h http.Header
			if tc.name != "nil" {
				h = filled(tc.fields)
			}
			got := Recycle(h, tc.peak)
			if got == nil || len(got) != 0 {
				t.Fatalf("Recycle returned %v, want an empty map", got)
			}
			same := h != nil && reflect.ValueOf(got).UnsafePointer() == reflect.ValueOf(h).UnsafePointer()
			if same != tc.wantSame {
				t.Fatalf("same map: %v, want %v", same, tc.wantSame)
			}
		})
	}
}

// stripOnePassPerOption is StripConnectionListed as it was: DeleteAll for
// each option, a pass over h per option. The one-pass version must remove
// exactly what it removed.
func stripOnePassPerOption(h http.Header) {
	vals := h["Connection"]
	if len(vals) == 0 {
		return
	}
	var keep []string
	changed := false
	for opt := range ConnectionOptions(vals) {
		name := textproto.CanonicalMIMEHeaderKey(opt)
		if kept[name] {
			keep = append(keep, opt)
			continue
		}
		changed = true
		DeleteAll(h, name)
	}
	if !changed {
		return
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}

// TestStripConnectionListedMatchesOnePassPerOption compares the one-pass
// removal with the pass-per-option one on headers built from spellings
// that do and do not name one another.
func TestStripConnectionListedMatchesOnePassPerOption(t *testing.T) {
	t.Parallel()
	names := []string{"X-A", "x-a", "X_A", "x_a", "X-a-b", "X_A_B", "X-Ab", "Keep-Alive", "keep_alive", "Te", "TE", "Upgrade", "Accept", "ACCEPT", "X-Forwarded-For", "x_forwarded_for", "Close"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		in := http.Header{}
		for range 1 + r.IntN(6) {
			in[names[r.IntN(len(names))]] = []string{"v"}
		}
		var opts []string
		for range r.IntN(4) {
			opts = append(opts, names[r.IntN(len(names))])
		}
		if len(opts) > 0 {
			in["Connection"] = []string{strings.Join(opts, ", ")}
		}
		got, want := in.Clone(), in.Clone()
		StripConnectionListed(got)
		stripOnePassPerOption(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d, %v: got %v, want %v", i, in, got, want)
		}
	}
}

// BenchmarkStripConnectionListedHostile: a request naming thousands of
// Connection options and sending thousands of headers, within 64 KiB. One
// pass per option made it quadratic: 1.3 s of CPU for 15,000 options and
// 5,000 names.
func BenchmarkStripConnectionListedHostile(b *testing.B) {
	for _, n := range []int{100, 3000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			in := http.Header{"Connection": {strings.Repeat("a,", n) + "b"}}
			for i := range n {
				in["X"+strconv.Itoa(i)] = []string{"v"}
			}
			for b.Loop() {
				StripConnectionListed(in.Clone())
			}
		})
	}
}

// CGIName(a) == CGIName(b) is SameCGIName(a, b), and a name already in
// that form is returned as it is. Not parallel: AllocsPerRun.
func TestCGIName(t *testing.T) {
	names := []string{"X-Tenant", "x_tenant", "X_TENANT", "x-tenant", "X-Tenants", "Accept", "accept", "A_B-c", "a-b_C", ""}
	for _, a := range names {
		for _, b := range names {
			if got, want := CGIName(a) == CGIName(b), SameCGIName(a, b); got != want {
				t.Errorf("CGIName(%q) == CGIName(%q) is %v, SameCGIName %v", a, b, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(10, func() { _ = CGIName("x-tenant") }); n != 0 {
		t.Errorf("%v allocations for a name in CGI form", n)
	}
}
