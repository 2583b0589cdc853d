package admin

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawGet sends a GET with the given Host header on a new raw connection to
// addr (TCP, or the Unix socket when addr is a path) and returns the status
// code.
func rawGet(t *testing.T, addr, path, host string) int {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestObserveChecksHost sends requests with forged Host headers to the
// observe address: names that are not allowed (DNS rebinding) get 421, IP
// literals, localhost and configured names pass, "*" turns the check off.
func TestObserveChecksHost(t *testing.T) {
	t.Parallel()
	plain := start(t, nil)
	plainAddr := strings.TrimPrefix(plain.observe(t), "http://")
	named := start(t, func(o *Options) { o.ObserveAllowedHosts = []string{"gw.internal", "Status.Example.com"} })
	namedAddr := strings.TrimPrefix(named.observe(t), "http://")
	anyHost := start(t, func(o *Options) { o.ObserveAllowedHosts = []string{"*"} })
	anyAddr := strings.TrimPrefix(anyHost.observe(t), "http://")
	_, port, _ := net.SplitHostPort(plainAddr)

	tests := []struct {
		name string
		addr string
		path string
		host string
		want int
	}{
		{name: "loopback IP", addr: plainAddr, path: "/v1/status", host: plainAddr, want: 200},
		{name: "IPv6 loopback literal", addr: plainAddr, path: "/v1/status", host: "[::1]:" + port, want: 200},
		{name: "pod IP literal", addr: plainAddr, path: "/readyz", host: "10.1.2.3:9100", want: 503},
		{name: "localhost", addr: plainAddr, path: "/v1/status", host: "localhost:" + port, want: 200},
		{name: "localhost upper case", addr: plainAddr, path: "/v1/status", host: "LOCALHOST", want: 200},
		{name: "rebound name", addr: plainAddr, path: "/v1/status", host: "evil.example:" + port, want: http.StatusMisdirectedRequest},
		{name: "rebound name on the bundle", addr: plainAddr, path: "/v1/bundle", host: "evil.example", want: http.StatusMisdirectedRequest},
		{name: "rebound name on metrics", addr: plainAddr, path: "/metrics", host: "evil.example", want: http.StatusMisdirectedRequest},
		{name: "name ending in localhost is not localhost", addr: plainAddr, path: "/v1/status", host: "localhost.evil.example", want: http.StatusMisdirectedRequest},
		{name: "configured name", addr: namedAddr, path: "/v1/status", host: "gw.internal:9100", want: 200},
		{name: "configured name, other case", addr: namedAddr, path: "/v1/status", host: "status.example.COM", want: 200},
		{name: "name not configured", addr: namedAddr, path: "/v1/status", host: "evil.example", want: http.StatusMisdirectedRequest},
		{name: "star allows any name", addr: anyAddr, path: "/v1/status", host: "evil.example", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := rawGet(t, tt.addr, tt.path, tt.host); got != tt.want {
				t.Fatalf("GET %s with Host %q: %d, want %d", tt.path, tt.host, got, tt.want)
			}
		})
	}
}

// TestAdminSocketIgnoresHost: the Unix socket is reached by file mode, not
// by name, so any Host is served there.
func TestAdminSocketIgnoresHost(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	if code := rawGet(t, h.sock, "/v1/status", "evil.example"); code != http.StatusOK {
		t.Fatalf("admin socket with another Host: %d", code)
	}
}
