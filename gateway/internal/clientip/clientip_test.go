package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trust   []netip.Prefix
		want    string
		trusted bool
	}{
		{name: "untrusted peer ignores the header", remote: "203.0.113.1:5", xff: []string{"1.1.1.1"}, trust: trusted, want: "203.0.113.1"},
		{name: "trusted peer takes the right-most untrusted", remote: "10.0.0.1:5", xff: []string{"1.1.1.1, 2.2.2.2, 10.0.0.2"}, trust: trusted, want: "2.2.2.2", trusted: true},
		{name: "right-most untrusted over several header lines", remote: "10.0.0.1:5", xff: []string{"6.6.6.6", "198.51.100.7, 10.0.0.9"}, trust: trusted, want: "198.51.100.7", trusted: true},
		{name: "all trusted gives the left-most", remote: "10.0.0.1:5", xff: []string{"10.9.9.9, 10.0.0.2"}, trust: trusted, want: "10.9.9.9", trusted: true},
		{name: "garbage stops the walk at the last trusted", remote: "10.0.0.2:5000", xff: []string{"junk, 10.0.0.3"}, trust: trusted, want: "10.0.0.3", trusted: true},
		{name: "IPv6 peer", remote: "[fd00::1]:5", xff: []string{"2001:db8::5"}, trust: trusted, want: "2001:db8::5", trusted: true},
		{name: "entry with a port", remote: "10.0.0.1:5", xff: []string{"198.51.100.1:1234"}, trust: trusted, want: "198.51.100.1", trusted: true},
		{name: "zoned entry stops the walk", remote: "10.0.0.1:5", xff: []string{"fe80::1%eth0"}, trust: trusted, want: "10.0.0.1", trusted: true},
		{name: "nil trust is the peer", remote: "10.0.0.1:5", xff: []string{"1.1.1.1"}, want: "10.0.0.1"},
		{name: "mapped peer is unmapped before the trust check", remote: "[::ffff:10.0.0.1]:5", xff: []string{"1.1.1.1"}, trust: trusted, want: "1.1.1.1", trusted: true},
		{name: "unix socket peer", remote: "@", xff: []string{"1.1.1.1"}, trust: trusted, want: "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			r.Header["X-Forwarded-For"] = tc.xff
			c := Of(r, tc.trust)
			if c.Addr.String() != tc.want || c.Trusted != tc.trusted {
				t.Fatalf("Of = %v trusted %v, want %s trusted %v", c.Addr, c.Trusted, tc.want, tc.trusted)
			}
		})
	}
}

func TestPeerHost(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, remote, want string }{
		{"ipv4", "192.0.2.1:4711", "192.0.2.1"},
		{"ipv6", "[2001:db8::1]:80", "2001:db8::1"},
		{"ipv6 not canonical", "[2001:DB8:0::1]:80", "2001:db8::1"},
		{"ipv4 mapped", "[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"no port", "192.0.2.1", "192.0.2.1"},
		{"not an address", "pipe", "pipe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if got := Of(r, nil).PeerHost; got != tc.want {
				t.Fatalf("PeerHost of %q = %q, want %q", tc.remote, got, tc.want)
			}
		})
	}
}

type carrying struct {
	http.ResponseWriter
	c Client
}

func (w *carrying) Client() *Client { return &w.c }

func TestFromPrefersTheCarriedClient(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:4711"
	carried := Client{Addr: netip.MustParseAddr("198.51.100.9")}
	if got := From(&carrying{c: carried}, r, nil).Addr; got != carried.Addr {
		t.Fatalf("From with a carrier = %v, want the carried %v", got, carried.Addr)
	}
	if got := From(httptest.NewRecorder(), r, nil).Addr.String(); got != "192.0.2.1" {
		t.Fatalf("From without a carrier = %v, want the peer", got)
	}
}

func TestOfDoesNotAllocateForIPv4(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:4711"
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 10.0.0.2")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if n := testing.AllocsPerRun(100, func() { Of(r, trusted) }); n != 0 {
		t.Errorf("Of allocates %v times for an IPv4 peer", n)
	}
}
