package proxy

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestMoveHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		direct           bool
		src, dst         http.Header
		wantSrc, wantDst http.Header
	}{
		{name: "all move",
			src:     http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}},
			dst:     http.Header{},
			wantSrc: http.Header{},
			wantDst: http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}}},
		{name: "event stream content type stays for the flush choice",
			src:     http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "X-A": {"1"}},
			dst:     http.Header{},
			wantSrc: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}},
			wantDst: http.Header{"X-A": {"1"}}},
		{name: "upper case event stream stays",
			src:     http.Header{"Content-Type": {" Text/Event-Stream"}},
			dst:     http.Header{},
			wantSrc: http.Header{"Content-Type": {" Text/Event-Stream"}},
			wantDst: http.Header{}},
		{name: "added to values already set",
			src:     http.Header{"Content-Type": {"text/plain"}, "Vary": {"Origin"}},
			dst:     http.Header{"Vary": {"Accept"}},
			wantSrc: http.Header{},
			wantDst: http.Header{"Content-Type": {"text/plain"}, "Vary": {"Accept", "Origin"}}},
		{name: "empty value list stays",
			src:     http.Header{"X-Empty": {}},
			dst:     http.Header{},
			wantSrc: http.Header{"X-Empty": {}},
			wantDst: http.Header{}},
		{name: "direct path shares all and leaves the upstream's header",
			direct:  true,
			src:     http.Header{"Content-Type": {"text/event-stream"}, "Vary": {"Origin"}, "X-Empty": {}},
			dst:     http.Header{"Vary": {"Accept"}, "X-Request-Id": {"r1"}},
			wantSrc: http.Header{"Content-Type": {"text/event-stream"}, "Vary": {"Origin"}, "X-Empty": {}},
			wantDst: http.Header{"Content-Type": {"text/event-stream"}, "Vary": {"Accept", "Origin"}, "X-Request-Id": {"r1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			moveHeaders(tc.dst, tc.src, tc.direct)
			if !reflect.DeepEqual(tc.src, tc.wantSrc) {
				t.Errorf("upstream header left %v, want %v", tc.src, tc.wantSrc)
			}
			if !reflect.DeepEqual(tc.dst, tc.wantDst) {
				t.Errorf("client header %v, want %v", tc.dst, tc.wantDst)
			}
		})
	}
}

// isEventStream answers as the lower-casing test it replaced.
func TestIsEventStream(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{
		"text/event-stream", "TEXT/Event-Stream; charset=utf-8", " \ttext/event-stream ", "text/event-streamx",
		"text/plain", "", "text/event-strea", "application/text/event-stream", "\u212aext/event-stream",
	} {
		checkEventStream(t, ct)
	}
}

func FuzzIsEventStream(f *testing.F) {
	f.Add("text/event-stream")
	f.Add("Text/Event-Stream;q=1")
	f.Fuzz(checkEventStream)
}

func checkEventStream(t *testing.T, ct string) {
	want := strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
	if got := isEventStream(http.Header{"Content-Type": {ct}}); got != want {
		t.Fatalf("isEventStream(%q) = %v, want %v", ct, got, want)
	}
}
