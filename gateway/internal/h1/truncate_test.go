package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
)

// TestUpstreamCutOffIsNotAWholeAnswer: an upstream that breaks off in the
// middle of a chunked body must not reach the client as a complete
// answer. httputil.ReverseProxy aborts the handler (http.ErrAbortHandler)
// only when the request's context carries http.ServerContextKey, as
// net/http's do; without it the proxy returned quietly and the chunked
// stream was ended cleanly, so the client read "hello" as the whole body
// (and a cache in front would have stored it).
func TestUpstreamCutOffIsNotAWholeAnswer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				// Chunked, one chunk, then the connection ends: no last chunk.
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	addr := start(t, httputil.NewSingleHostReverseProxy(u))

	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return // no answer at all is an honest failure too
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the client read %q as a whole body; the upstream had cut it off", got)
	}
}
