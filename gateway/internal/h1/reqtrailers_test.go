package h1

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRequestTrailersAreBounded: a chunked request's trailer fields reach
// the handler's Request.Trailer at the body's end, at most maxTrailers
// names of them, the first ones. Taking all 4,000 of a 43 KB trailer
// section took 66 ms per request (fasthttp finds a name's values by a walk
// of every trailer field); the bound keeps it to fasthttp's own parse.
func TestRequestTrailersAreBounded(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || string(b) != "a" {
			t.Errorf("body %q, %v", b, err)
		}
		got <- r.Trailer.Clone()
	}))
	for _, tc := range []struct {
		name   string
		fields int
		want   int
	}{
		{"a few", 3, 3},
		{"at the bound", maxTrailers, maxTrailers},
		{"4,000", 4000, maxTrailers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n")
			for i := range tc.fields {
				fmt.Fprintf(&b, "X-%d: v%d\r\n", i, i)
			}
			b.WriteString("\r\n")
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, b.String())
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			tr := <-got
			if len(tr) != tc.want {
				t.Fatalf("%d trailer names reached the handler, want %d", len(tr), tc.want)
			}
			for i := range tc.want {
				if v := tr.Get(fmt.Sprintf("X-%d", i)); v != fmt.Sprintf("v%d", i) {
					t.Errorf("trailer X-%d = %q, want v%d", i, v, i)
				}
			}
		})
	}
}
