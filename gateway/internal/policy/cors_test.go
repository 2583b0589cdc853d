package policy

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/clientip"
	"github.com/gitgate/gitgate/schemas"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	cfg := routeCfg(map[string]schemas.Policy{
		"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"alice": hashKey(aliceKey)}}},
		"cors": {CORS: &schemas.CORS{
			AllowOrigins:     []string{"https://app.example.com", "https://*.example.org", "http://localhost:3000"},
			AllowMethods:     []string{"GET", "PUT"},
			AllowHeaders:     []string{"Content-Type", "X-API-Key"},
			ExposeHeaders:    []string{"X-Request-Id"},
			AllowCredentials: true,
			MaxAge:           schemas.Duration(10 * time.Minute),
		}},
	}, "keys", "cors") // cors listed last still answers preflights before the key check
	g := newGateway(t, cfg, "r", Options{})
	preflight := func(origin, method, headers string) http.Header {
		h := hdr("Origin", origin, "Access-Control-Request-Method", method)
		if headers != "" {
			h.Set("Access-Control-Request-Headers", headers)
		}
		return h
	}
	tests := []struct {
		name       string
		method     string
		header     http.Header
		status     int    // 204 and 403 come from the gateway; the upstream only answers 200
		allowOrig  string // expected Access-Control-Allow-Origin ("" = absent)
		upstreamed bool
	}{
		{name: "preflight exact origin", method: "OPTIONS", header: preflight("https://app.example.com", "PUT", "content-type, x-api-key"), status: 204, allowOrig: "https://app.example.com"},
		{name: "preflight wildcard subdomain", method: "OPTIONS", header: preflight("https://a.b.example.org", "GET", ""), status: 204, allowOrig: "https://a.b.example.org"},
		{name: "preflight with port", method: "OPTIONS", header: preflight("http://localhost:3000", "GET", ""), status: 204, allowOrig: "http://localhost:3000"},
		{name: "preflight from an unlisted origin", method: "OPTIONS", header: preflight("https://evil.test", "GET", ""), status: 403},
		{name: "preflight wildcard does not match the apex", method: "OPTIONS", header: preflight("https://example.org", "GET", ""), status: 403},
		{name: "preflight wildcard does not match a look-alike", method: "OPTIONS", header: preflight("https://evilexample.org", "GET", ""), status: 403},
		{name: "preflight wildcard does not match another scheme", method: "OPTIONS", header: preflight("http://a.example.org", "GET", ""), status: 403},
		{name: "preflight wildcard does not match a port", method: "OPTIONS", header: preflight("https://a.example.org:8443", "GET", ""), status: 403},
		{name: "preflight exact origin with other port", method: "OPTIONS", header: preflight("https://app.example.com:444", "GET", ""), status: 403},
		{name: "preflight method not allowed", method: "OPTIONS", header: preflight("https://app.example.com", "DELETE", ""), status: 403},
		{name: "preflight header not allowed", method: "OPTIONS", header: preflight("https://app.example.com", "GET", "x-secret"), status: 403},
		{name: "simple request from a listed origin", method: "GET", header: hdr("Origin", "https://app.example.com", "X-API-Key", aliceKey), status: 200, allowOrig: "https://app.example.com", upstreamed: true},
		{name: "simple request from an unlisted origin gets no CORS headers", method: "GET", header: hdr("Origin", "https://evil.test", "X-API-Key", aliceKey), status: 200, upstreamed: true},
		{name: "401 still carries CORS headers", method: "GET", header: hdr("Origin", "https://app.example.com"), status: 401, allowOrig: "https://app.example.com"},
		{name: "plain OPTIONS is not a preflight", method: "OPTIONS", header: hdr("Origin", "https://app.example.com", "X-API-Key", aliceKey), status: 200, allowOrig: "https://app.example.com", upstreamed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := g.do(t, tc.method, "/", tc.header)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
			if got := res.header.Get("Access-Control-Allow-Origin"); got != tc.allowOrig {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrig)
			}
			if !headerHas(res.header, "Vary", "Origin") {
				t.Errorf("Vary %q lacks Origin", res.header.Values("Vary"))
			}
			if tc.allowOrig != "" && res.header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Error("no Access-Control-Allow-Credentials")
			}
			if tc.status == 204 {
				if res.header.Get("Access-Control-Allow-Methods") != "GET, PUT" || res.header.Get("Access-Control-Max-Age") != "600" ||
					res.header.Get("Access-Control-Allow-Headers") != "Content-Type, X-API-Key" {
					t.Errorf("preflight headers %v", res.header)
				}
			}
			if tc.status == 200 && tc.allowOrig != "" && res.header.Get("Access-Control-Expose-Headers") != "X-Request-Id" {
				t.Errorf("Access-Control-Expose-Headers %q", res.header.Get("Access-Control-Expose-Headers"))
			}
			if tc.upstreamed && res.seen == nil {
				t.Error("request did not reach the upstream")
			}
		})
	}
}

func headerHas(h http.Header, name, want string) bool {
	for _, v := range h.Values(name) {
		for _, p := range splitList(v) {
			if p == want {
				return true
			}
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' {
			s := v[start:i]
			for len(s) > 0 && s[0] == ' ' {
				s = s[1:]
			}
			out = append(out, s)
			start = i + 1
		}
	}
	return out
}

func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	cfg := routeCfg(map[string]schemas.Policy{"cors": {CORS: &schemas.CORS{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*"}}}}, "cors")
	g := newGateway(t, cfg, "r", Options{})
	res := g.do(t, "OPTIONS", "/", hdr("Origin", "https://x.test", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-anything"))
	if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "*" || res.header.Get("Access-Control-Allow-Headers") != "x-anything" {
		t.Fatalf("status %d headers %v", res.status, res.header)
	}
	if res.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials allowed with origin *")
	}
}

func TestIPLists(t *testing.T) {
	t.Parallel()
	cfg := routeCfg(map[string]schemas.Policy{
		"office": {IPAllow: &schemas.IPList{CIDRs: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"}}},
		"bad":    {IPDeny: &schemas.IPList{CIDRs: []string{"10.6.6.0/24"}}},
	}, "office", "bad")
	// The test client connects from 127.0.0.1, a trusted proxy here, so the
	// client address comes from X-Forwarded-For.
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	opts := Options{ClientIP: func(r *http.Request) netip.Addr { return clientip.Of(r, trusted).Addr }}
	g := newGateway(t, cfg, "r", opts)
	tests := []struct {
		name   string
		xff    []string
		status int
	}{
		{name: "allowed network", xff: []string{"10.1.2.3"}, status: 200},
		{name: "allowed IPv6 network", xff: []string{"2001:db8::1"}, status: 200},
		{name: "bare address is a /32", xff: []string{"192.0.2.7"}, status: 200},
		{name: "bare address neighbour", xff: []string{"192.0.2.8"}, status: 403},
		{name: "IPv4-mapped IPv6 is unmapped", xff: []string{"::ffff:10.1.2.3"}, status: 200},
		{name: "outside the allow list", xff: []string{"203.0.113.9"}, status: 403},
		{name: "inside the deny list", xff: []string{"10.6.6.6"}, status: 403},
		{name: "spoofed left entry is ignored", xff: []string{"10.1.1.1, 203.0.113.9"}, status: 403},
		{name: "right-most untrusted across header lines", xff: []string{"203.0.113.9", "10.1.1.1, 127.0.0.5"}, status: 200},
		{name: "no header: the proxy itself is the client", status: 403},
		{name: "garbage entry stops at the proxy", xff: []string{"10.1.1.1, garbage"}, status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tc.xff {
				h.Add("X-Forwarded-For", v)
			}
			res := g.do(t, "GET", "/", h)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
		})
	}
}
