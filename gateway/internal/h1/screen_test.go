package h1

import (
	"net/http"
	"net/textproto"
	"strings"
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

// TestScreenHeaders runs a header block through parseHeaders and
// checkFraming, the screen behind fasthttp's own parser: each case is
// refused (or not) as net/http would, whatever the spelling of the names
// that framing depends on, which parseHeaders notes for checkFraming.
func TestScreenHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		block    string
		http11   bool
		absolute bool // the target was in absolute form
		want     *refusal
	}{
		{name: "plain", block: "Host: a\r\nAccept: */*\r\n\r\n", http11: true},
		{name: "no Host on HTTP/1.1", block: "Accept: */*\r\n\r\n", http11: true, want: refuseNoHost},
		{name: "no Host on HTTP/1.1 with an absolute target", block: "Accept: */*\r\n\r\n", http11: true, absolute: true},
		{name: "no Host on HTTP/1.0", block: "Accept: */*\r\n\r\n"},
		{name: "no header at all", block: "\r\n", http11: true, want: refuseNoHost},
		{name: "two Hosts", block: "Host: a\r\nhost: b\r\n\r\n", http11: true, want: refuseManyHosts},
		{name: "malformed Host", block: "Host: a b\r\n\r\n", http11: true, want: refuseBadHost},
		{name: "lower-case host", block: "host: a\r\n\r\n", http11: true},
		{name: "one Content-Length", block: "Host: a\r\nContent-Length: 5\r\n\r\n", http11: true},
		{name: "repeated equal Content-Length", block: "Host: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", http11: true},
		{name: "conflicting Content-Length", block: "Host: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", http11: true, want: refuseManyLengths},
		{name: "signed Content-Length", block: "Host: a\r\nCONTENT-LENGTH: +5\r\n\r\n", http11: true, want: refuseLength},
		{name: "empty Content-Length", block: "Host: a\r\nContent-Length: \r\n\r\n", http11: true, want: refuseLength},
		{name: "chunked", block: "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n", http11: true},
		{name: "chunked in upper case", block: "Host: a\r\ntransfer-encoding: CHUNKED\r\n\r\n", http11: true},
		{name: "gzip, chunked", block: "Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", http11: true, want: refuseEncoding},
		{name: "two Transfer-Encoding lines", block: "Host: a\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n", http11: true, want: refuseEncoding},
		{name: "Expect 100-continue", block: "Host: a\r\nExpect: 100-continue\r\n\r\n", http11: true},
		{name: "another expectation", block: "Host: a\r\nexpect: 200-ok\r\n\r\n", http11: true, want: refuseExpect},
		{name: "empty Expect", block: "Host: a\r\nExpect: \r\n\r\n", http11: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			var vals []string
			found, rf := parseHeaders(tc.block, h, &vals)
			if rf != nil {
				t.Fatalf("parseHeaders refused: %s", rf.reason)
			}
			for k := range h {
				if (found&seenOf(k) != 0) != (seenOf(k) != 0) {
					t.Errorf("parseHeaders did not note %s", k)
				}
			}
			if got := checkFraming(h, found, tc.http11, tc.absolute); got != tc.want {
				t.Fatalf("checkFraming = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestParseHeadersRepeatedNameIsLinear: a request that repeats one name
// thousands of times (within the header size limit) costs the parser a
// handful of allocations, as its value list grows by doubling, not one
// copy of the whole list per repeat (quadratic: 155 ms of CPU for 6,000
// repeats). The values stay in order, and a repeated name's list never
// shares memory with another name's.
func TestParseHeadersRepeatedNameIsLinear(t *testing.T) {
	const repeats = 6000
	block := "Host: h\r\n" + strings.Repeat("X-Rep: a\r\nX-Rep: b\r\nX-One: c\r\n", repeats/2) + "\r\n"
	h := http.Header{}
	var vals []string
	parse := func() {
		clear(h)
		vals = vals[:0]
		if _, rf := parseHeaders(block, h, &vals); rf != nil {
			t.Fatalf("refused: %s", rf.reason)
		}
	}
	parse()
	rep, one := h["X-Rep"], h["X-One"]
	if len(rep) != repeats || len(one) != repeats/2 {
		t.Fatalf("%d X-Rep and %d X-One values, want %d and %d", len(rep), len(one), repeats, repeats/2)
	}
	for i, v := range rep {
		if want := "ab"[i%2 : i%2+1]; v != want {
			t.Fatalf("X-Rep value %d is %q, want %q", i, v, want)
		}
	}
	for i, v := range one {
		if v != "c" {
			t.Fatalf("X-One value %d is %q, want c", i, v)
		}
	}
	if got := h["Host"]; len(got) != 1 || got[0] != "h" {
		t.Fatalf("Host %q after the repeats, want [h]", got)
	}
	// Not parallel: AllocsPerRun. Doubling two lists of thousands of
	// values takes about 2*log2(6000) allocations.
	if n := testing.AllocsPerRun(5, parse); n > 40 {
		t.Fatalf("%v allocations to parse %d repeats, want at most 40", n, repeats)
	}
}
