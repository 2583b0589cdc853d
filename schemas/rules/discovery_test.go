package rules

import (
	"strings"
	"testing"
)

func TestParseDiscovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		target     string
		wantErr    string // "": valid
		wantName   string
		wantPort   int
		serverName string
	}{
		{"dns", "dns://api.internal:8080", "", "api.internal", 8080, "api.internal"},
		{"dns with a final dot", "dns://api.example.com.:8080", "", "api.example.com.", 8080, "api.example.com"},
		{"dns single label", "dns://api:80", "", "api", 80, "api"},
		{"srv", "srv://_http._tcp.search.internal", "", "_http._tcp.search.internal", 0, "search.internal"},
		{"dns without port", "dns://api.internal", "needs a port", "", 0, ""},
		{"dns port zero", "dns://api.internal:0", "outside 1..65535", "", 0, ""},
		{"dns ipv4 address", "dns://10.0.0.1:80", "is an address", "", 0, ""},
		{"dns ipv6 address", "dns://[::1]:80", "is an address", "", 0, ""},
		{"dns with a path", "dns://api.internal:80/v1", "path, query or fragment", "", 0, ""},
		{"dns with a query", "dns://api.internal:80?a=b", "path, query or fragment", "", 0, ""},
		{"dns with credentials", "dns://u:p@api.internal:80", "credentials", "", 0, ""},
		{"dns bad character", "dns://api!.internal:80", "character", "", 0, ""},
		{"dns label too long", "dns://" + strings.Repeat("a", 64) + ".internal:80", "longer than 63", "", 0, ""},
		{"srv with a port", "srv://_http._tcp.search.internal:80", "must not have a port", "", 0, ""},
		{"srv over udp", "srv://_http._udp.search.internal", "_service._tcp.NAME", "", 0, ""},
		{"srv without service", "srv://search.internal", "_service._tcp.NAME", "", 0, ""},
		{"not discovery", "http://api.internal", "dns:// or srv://", "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := ParseDiscovery(tc.target)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDiscovery(%q) = %+v, %v; want an error with %q", tc.target, d, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDiscovery(%q): %v", tc.target, err)
			}
			if d.Name != tc.wantName || d.Port != tc.wantPort || d.ServerName() != tc.serverName {
				t.Fatalf("ParseDiscovery(%q) = %+v (server name %q), want name %q port %d server name %q",
					tc.target, d, d.ServerName(), tc.wantName, tc.wantPort, tc.serverName)
			}
		})
	}
}
