package h1

import (
	"io"
	"net/http"
	"testing"
)

// TestRemoteAddrPerConnection: every request sees its own connection's
// address, on 300 connections open at once (more than the cache has
// slots, so slots are shared), over two rounds of requests.
func TestRemoteAddrPerConnection(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	}))
	const conns = 300
	type client struct {
		local string
		ask   func() string
	}
	clients := make([]client, conns)
	for i := range clients {
		c, br := dial(t, addr)
		clients[i] = client{local: c.LocalAddr().String(), ask: func() string {
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			return string(b)
		}}
	}
	for round := range 2 {
		for i, c := range clients {
			if got := c.ask(); got != c.local {
				t.Fatalf("round %d, connection %d: RemoteAddr %q, want %q", round, i, got, c.local)
			}
		}
	}
}
