package reply

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, code, message, upstream, want string
	}{
		{"without upstream", "no_route", "no route", "", `{"error":"no_route","message":"no route"}` + "\n"},
		{"with upstream", "breaker_open", "circuit breaker open", "shop", `{"error":"breaker_open","message":"circuit breaker open","upstream":"shop"}` + "\n"},
		{"escaped", "bad_body", `reading "x" <y>`, "", `{"error":"bad_body","message":"reading \"x\" \u003cy\u003e"}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			Write(rec, http.StatusTeapot, New(tc.code, tc.message, tc.upstream))
			if rec.Code != http.StatusTeapot || rec.Body.String() != tc.want {
				t.Fatalf("got %d %q, want 418 %q", rec.Code, rec.Body, tc.want)
			}
			if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(tc.want)) {
				t.Fatalf("Content-Length %s, want %d", got, len(tc.want))
			}
		})
	}
}
