package proxy

import (
	"net/http"
	"slices"
	"testing"
)

func TestMoveContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		src, dst         http.Header
		wantSrc, wantDst []string
	}{
		{name: "json moves", src: http.Header{"Content-Type": {"application/json"}}, dst: http.Header{},
			wantSrc: nil, wantDst: []string{"application/json"}},
		{name: "event stream stays for the flush choice", src: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, dst: http.Header{},
			wantSrc: []string{"text/event-stream; charset=utf-8"}, wantDst: nil},
		{name: "upper case event stream stays", src: http.Header{"Content-Type": {" Text/Event-Stream"}}, dst: http.Header{},
			wantSrc: []string{" Text/Event-Stream"}, wantDst: nil},
		{name: "none", src: http.Header{}, dst: http.Header{}},
		{name: "added to a value already set", src: http.Header{"Content-Type": {"text/plain"}}, dst: http.Header{"Content-Type": {"text/html"}},
			wantSrc: nil, wantDst: []string{"text/html", "text/plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			moveContentType(tc.dst, tc.src)
			if got := tc.src["Content-Type"]; !slices.Equal(got, tc.wantSrc) {
				t.Errorf("upstream header %q, want %q", got, tc.wantSrc)
			}
			if got := tc.dst["Content-Type"]; !slices.Equal(got, tc.wantDst) {
				t.Errorf("client header %q, want %q", got, tc.wantDst)
			}
		})
	}
}
