package runtime

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// seenHeaders is an upstream that answers with the correlation headers it
// received, as JSON, and echoes a foreign X-Request-Id of its own.
func seenHeaders(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("early") {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints) // ReverseProxy clears the response headers after a 1xx
		}
		w.Header().Set("X-Request-Id", "from-upstream")
		_ = json.NewEncoder(w).Encode(map[string][]string{
			"id": r.Header.Values("X-Request-Id"), "tp": r.Header.Values("Traceparent"), "ts": r.Header.Values("Tracestate"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestRequestCorrelation: X-Request-ID is generated unless a trusted proxy
// sent a sane one, reaches the upstream and the client (also on the
// gateway's own answers); a valid traceparent is passed unchanged with its
// tracestate and an invalid one is dropped, from any peer.
func TestRequestCorrelation(t *testing.T) {
	t.Parallel()
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		path    string
		hdr     map[string]string
		keepID  string // the id expected; "" means a generated one
		wantTP  string // traceparent expected upstream; "" none
		wantTS  string
	}{
		{name: "generated when absent", path: "/shop"},
		{name: "generated on a gateway answer", path: "/nowhere"},
		{name: "trusted proxy's id kept", trusted: loop, path: "/shop", hdr: map[string]string{"X-Request-Id": "lb-1234_abc"}, keepID: "lb-1234_abc"},
		{name: "trusted proxy's id kept on a gateway answer", trusted: loop, path: "/nowhere", hdr: map[string]string{"X-Request-Id": "lb-1234_abc"}, keepID: "lb-1234_abc"},
		{name: "generated after an upstream's 103 Early Hints", path: "/shop?early"},
		{name: "untrusted peer's id replaced", path: "/shop", hdr: map[string]string{"X-Request-Id": "forged"}},
		{name: "insane id replaced: space", trusted: loop, path: "/shop", hdr: map[string]string{"X-Request-Id": "a b"}},
		{name: "insane id replaced: too long", trusted: loop, path: "/shop", hdr: map[string]string{"X-Request-Id": strings.Repeat("x", 201)}},
		{name: "insane id replaced: non-ASCII", trusted: loop, path: "/shop", hdr: map[string]string{"X-Request-Id": "idé"}},
		{name: "valid traceparent passed with tracestate", path: "/shop", hdr: map[string]string{"Traceparent": validTP, "Tracestate": "vendor=x"}, wantTP: validTP, wantTS: "vendor=x"},
		{name: "invalid traceparent dropped with tracestate", path: "/shop", hdr: map[string]string{"Traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "Tracestate": "vendor=x"}},
		{name: "malformed traceparent dropped", path: "/shop", hdr: map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}},
		{name: "version ff dropped", path: "/shop", hdr: map[string]string{"Traceparent": "ff" + validTP[2:]}},
		{name: "later version with more fields passed", path: "/shop", hdr: map[string]string{"Traceparent": "01" + validTP[2:] + "-later"}, wantTP: "01" + validTP[2:] + "-later"},
		{name: "uppercase hex dropped", path: "/shop", hdr: map[string]string{"Traceparent": strings.ToUpper(validTP)}},
		{name: "version 00 with more fields dropped", path: "/shop", hdr: map[string]string{"Traceparent": validTP + "-x"}},
		{name: "tracestate alone dropped", path: "/shop", hdr: map[string]string{"Tracestate": "vendor=x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := seenHeaders(t)
			e := newEngine(t, Options{TrustedProxies: tc.trusted})
			mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(up.URL)}, Routes: map[string]schemas.Route{"shop": route("/shop", to("a", 100))}})
			srv := front(t, e)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			ids := resp.Header.Values("X-Request-Id")
			if len(ids) != 1 {
				t.Fatalf("response X-Request-Id = %q, want one value", ids)
			}
			id := ids[0]
			if tc.keepID != "" && id != tc.keepID {
				t.Errorf("response id %q, want %q", id, tc.keepID)
			}
			if tc.keepID == "" && !generatedID.MatchString(id) {
				t.Errorf("response id %q is not a generated one", id)
			}
			if !strings.HasPrefix(tc.path, "/shop") {
				return
			}
			var seen map[string][]string
			if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
				t.Fatal(err)
			}
			if len(seen["id"]) != 1 || seen["id"][0] != id {
				t.Errorf("upstream saw X-Request-Id %q, client got %q", seen["id"], id)
			}
			if got := strings.Join(seen["tp"], ","); got != tc.wantTP {
				t.Errorf("upstream saw traceparent %q, want %q", got, tc.wantTP)
			}
			if got := strings.Join(seen["ts"], ","); got != tc.wantTS {
				t.Errorf("upstream saw tracestate %q, want %q", got, tc.wantTS)
			}
		})
	}
}

// TestAccessLogCorrelation: the access log line names the decided client,
// the request id, the trace id, the target and the bytes in and out.
func TestAccessLogCorrelation(t *testing.T) {
	t.Parallel()
	var sink lockedBuffer
	a := named(t, "a")
	e := newEngine(t, Options{AccessLog: true, Logger: zerolog.New(&sink), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"a": ups(a.URL)}, Routes: map[string]schemas.Route{"shop": route("/shop", to("a", 100))}})
	srv := front(t, e)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/shop/cart", strings.NewReader("hello"))
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "req-42")
	req.Header.Set("Traceparent", validTP)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found map[string]any
	for _, l := range sink.lines() {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["message"] == "request" {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no access log line in:\n%s", bytes.Join(sink.lines(), []byte("\n")))
	}
	want := map[string]any{
		"client": "203.0.113.9", "request_id": "req-42", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
		"target": a.URL, "bytes_in": float64(5), "bytes": float64(1),
	}
	for k, v := range want {
		if found[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, found[k], v, found)
		}
	}
}
