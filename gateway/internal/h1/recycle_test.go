package h1

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// TestResetRecyclesHeaderMaps: an exchange goes back to the pool with its
// request and response header maps emptied, and replaced when a request
// came with, or a handler set, more than headers.MaxPooledFields names
// (a Go map keeps the capacity it grew to, and the next requests would
// pay for it), even when the handler removed most of them again.
func TestResetRecyclesHeaderMaps(t *testing.T) {
	t.Parallel()
	fill := func(h http.Header, n int) {
		for i := range n {
			h[fmt.Sprintf("X-F%d", i)] = []string{"v"}
		}
	}
	same := func(a, b http.Header) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	tests := []struct {
		name             string
		reqNames, peak   int
		respNames        int
		keepReq, keepRes bool
	}{
		{name: "ordinary", reqNames: 8, peak: 8, respNames: 6, keepReq: true, keepRes: true},
		{name: "many request fields", reqNames: 5000, peak: 5000, respNames: 6, keepRes: true},
		{name: "many request fields, removed by the handler", reqNames: 2, peak: 5000, respNames: 6, keepRes: true},
		{name: "many response fields", reqNames: 8, peak: 8, respNames: 1000, keepReq: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ex := newExchange(nil)
			ex.reset()
			req, res := ex.hdr, ex.whdr
			fill(ex.hdr, tc.reqNames)
			ex.peak = tc.peak
			fill(ex.whdr, tc.respNames)
			ex.vals = make([]string, tc.peak)
			ex.reset()
			if len(ex.hdr) != 0 || len(ex.whdr) != 0 || len(ex.vals) != 0 {
				t.Fatalf("after reset: %d request, %d response names, %d values", len(ex.hdr), len(ex.whdr), len(ex.vals))
			}
			if got := same(ex.hdr, req); got != tc.keepReq {
				t.Errorf("request map kept: %v, want %v", got, tc.keepReq)
			}
			if got := same(ex.whdr, res); got != tc.keepRes {
				t.Errorf("response map kept: %v, want %v", got, tc.keepRes)
			}
			if tc.peak > 4*headers.MaxPooledFields && cap(ex.vals) > 4*headers.MaxPooledFields {
				t.Errorf("value list of capacity %d kept", cap(ex.vals))
			}
		})
	}
}
