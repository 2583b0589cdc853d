package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startTimeouts serves h with short header and idle timeouts.
func startTimeouts(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Handler: h, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// A client that sends its header block slowly, or nothing on a kept-alive
// connection, loses the connection at the header or idle timeout, also
// after a request whose body lifted the read deadline.
func TestSlowClientsLoseTheirConnection(t *testing.T) {
	t.Parallel()
	addr := startTimeouts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	post := "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	tests := []struct {
		name   string
		before string // a whole request answered first, or ""
		then   string // sent, and never finished
	}{
		{name: "partial header block", then: "GET /a HTTP/1.1\r\nHost: x\r\n"},
		{name: "partial header block after a body", before: post, then: "GET /a HTTP/1.1\r\nHost: x\r\n"},
		{name: "idle after a body", before: post},
		{name: "idle after a chunked body", before: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, br := dial(t, addr)
			if tc.before != "" {
				_, _ = io.WriteString(c, tc.before)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			if tc.then != "" {
				_, _ = io.WriteString(c, tc.then)
			}
			if s := readToClose(t, br); s != "" && !strings.HasPrefix(s, "HTTP/1.1 408") && !strings.HasPrefix(s, "HTTP/1.1 400") {
				t.Fatalf("answer %q", s)
			}
		})
	}
}

// readToClose reads what the server sends until it closes the connection,
// failing when dial's hang guard (10 s, against timeouts of 300 ms) fires
// first: the connection is still open.
func readToClose(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	rest, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open (read %q)", rest)
	}
	return string(rest)
}
