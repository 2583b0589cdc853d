package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Answers that carry no body (HEAD, 204, 304) keep the connection in step
// whether the handler flushed them or not, and whatever body it wrote: the
// next pipelined answer is read where it starts.
func TestBodilessAnswersKeepTheConnectionInStep(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			_, _ = io.WriteString(w, "next")
			return
		}
		switch r.URL.Query().Get("status") {
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "304":
			w.WriteHeader(http.StatusNotModified)
		}
		if r.URL.Query().Get("flush") != "" {
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, strings.Repeat("b", 100<<10)) // refused or dropped
	}))
	tests := []struct{ name, method, target string }{
		{"HEAD", "HEAD", "/a"},
		{"HEAD flushed", "HEAD", "/a?flush=1"},
		{"204", "GET", "/a?status=204"},
		{"204 flushed", "GET", "/a?status=204&flush=1"},
		{"304", "GET", "/a?status=304"},
		{"304 flushed", "GET", "/a?status=304&flush=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, tc.method+" "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the next answer: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != "next" {
				t.Fatalf("the next answer: %d %q", resp.StatusCode, b)
			}
		})
	}
}
