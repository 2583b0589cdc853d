package h1

import (
	"bufio"
	"context"
	"crypto/tls"
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
	return startWithTimeouts(t, h, 300*time.Millisecond, 300*time.Millisecond)
}

// startWithTimeouts serves h with the given header and idle timeouts.
func startWithTimeouts(t *testing.T, h http.Handler, header, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveWithTimeouts(t, ln, h, header, idle)
	return ln.Addr().String()
}

// startTLSWithTimeouts is startWithTimeouts over TLS (tlsListener).
func startTLSWithTimeouts(t *testing.T, h http.Handler, header, idle time.Duration) (string, *tls.Config) {
	t.Helper()
	ln, client := tlsListener(t)
	serveWithTimeouts(t, ln, h, header, idle)
	return ln.Addr().String(), client
}

// serveWithTimeouts serves h on ln with the given header and idle
// timeouts until the test ends.
func serveWithTimeouts(t *testing.T, ln net.Listener, h http.Handler, header, idle time.Duration) {
	t.Helper()
	s := New(Options{Handler: h, ReadHeaderTimeout: header, IdleTimeout: idle})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
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

// A kept-alive connection waits for its next request up to the idle
// timeout, longer than the header timeout, and the header timeout still
// bounds the header block that then comes slowly: the two deadlines that
// fasthttp sets for every request both hold, though the socket's is moved
// lazily (lazyConn).
func TestIdleLongerThanTheHeaderTimeout(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "TLS"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testIdleLongerThanTheHeaderTimeout(t, useTLS)
		})
	}
}

func testIdleLongerThanTheHeaderTimeout(t *testing.T, useTLS bool) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	header, idle := 200*time.Millisecond, 30*time.Second
	var c net.Conn
	var br *bufio.Reader
	if useTLS {
		addr, cfg := startTLSWithTimeouts(t, h, header, idle)
		raw, _ := dial(t, addr)
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c, br = tc, bufio.NewReader(tc)
	} else {
		c, br = dial(t, startWithTimeouts(t, h, header, idle))
	}
	get := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	for i := range 2 {
		if i > 0 {
			time.Sleep(600 * time.Millisecond) // idle: three header timeouts
		}
		_, _ = io.WriteString(c, get)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d after an idle wait: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, b)
		}
	}
	// A header block that stops half-way loses the connection at the
	// header timeout, not at the idle one (dial's guard is 10 s).
	_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n")
	if s := readToClose(t, br); s != "" && !strings.HasPrefix(s, "HTTP/1.1 408") && !strings.HasPrefix(s, "HTTP/1.1 400") {
		t.Fatalf("answer %q", s)
	}
}

// A hijacked connection (an upgrade) is the handler's for as long as it
// lasts: neither the header timeout nor the idle one ends it, however
// long it stays quiet, and an io.Copy from it waits as a Read does.
func TestHijackedConnectionOutlivesTheTimeouts(t *testing.T) {
	t.Parallel()
	addr := startWithTimeouts(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, ok := upgradeEcho(t, w)
		if !ok {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, brw) // echo until the client closes its side
	}), 200*time.Millisecond, 300*time.Millisecond)
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("answer %v, %v", resp, err)
	}
	time.Sleep(time.Second) // quiet: five header timeouts, three idle ones
	_, _ = io.WriteString(c, "still here\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "still here\n" {
		t.Fatalf("echo after a quiet second: %q, %v", got, err)
	}
}
