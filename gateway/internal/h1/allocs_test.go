package h1

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"testing"
)

// TestServeAllocations holds the adapter to one allocation per keep-alive
// request: the string that the request target and header block are copied
// into, which the handler may keep. A handler that allocates nothing, a
// client on a raw socket that allocates nothing; the count is the whole
// process's, server and client, averaged over many requests. Not parallel:
// AllocsPerRun counts every goroutine's allocations.
func TestServeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	body := bytes.Repeat([]byte("x"), 100)
	gateway, text := []string{"gitgate"}, []string{"text/plain"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Gateway"] = gateway
		w.Header()["Content-Type"] = text
		_, _ = w.Write(body)
	})
	for _, tc := range []struct {
		name string
		req  string
	}{
		{name: "short header", req: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "longer header", req: "GET /a/longer/path?with=query HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nX-Custom-Header: some value\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", start(t, h))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte(tc.req)
			buf := make([]byte, 4096)
			roundTrip := func() {
				if err := exchangeRaw(c, br, req, buf, len(body)); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip() // the connection's first request sets up its exchange
			if !bytes.Contains(buf, []byte("X-Gateway: gitgate")) {
				t.Fatalf("answer without the handler's header:\n%s", buf)
			}
			if n := testing.AllocsPerRun(2000, roundTrip); n > 1 {
				t.Fatalf("%v allocations per request, want at most 1", n)
			}
		})
	}
}
