package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestObserveHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		addr  string
		names []string
		want  []string
	}{
		{name: "all interfaces", addr: ":9100", want: nil},
		{name: "IP literal", addr: "127.0.0.1:9100", names: []string{"a.test"}, want: []string{"a.test"}},
		{name: "own host name", addr: "gw.internal:9100", names: []string{"a.test"}, want: []string{"a.test", "gw.internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := observeHosts(tt.addr, tt.names); !slices.Equal(got, tt.want) {
				t.Fatalf("observeHosts(%q, %q) = %q, want %q", tt.addr, tt.names, got, tt.want)
			}
		})
	}
}

// TestObserveAddressRefusesRebinding sends raw requests with forged Host
// headers to a running gateway's observe address.
func TestObserveAddressRefusesRebinding(t *testing.T) {
	t.Parallel()
	g := startGateway(t, t.TempDir(), func(c *Config) {
		c.ObserveAddr = "127.0.0.1:0"
		c.ObserveAllowedHosts = []string{"gw.test"}
	})
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	addr := strings.TrimPrefix(g.observe, "http://")
	tests := []struct {
		name string
		host string
		want int
	}{
		{name: "IP literal", host: addr, want: http.StatusOK},
		{name: "configured name", host: "gw.test", want: http.StatusOK},
		{name: "other name", host: "attacker.example", want: http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /v1/status HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tt.host)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("Host %q: %d, want %d", tt.host, resp.StatusCode, tt.want)
			}
		})
	}
}
