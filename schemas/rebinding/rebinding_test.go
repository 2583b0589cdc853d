package rebinding

import "testing"

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	names := map[string]bool{"localhost": true, "gitgate-peers.gitgate.svc": true}
	tests := []struct {
		name, host string
		want       bool
	}{
		{"empty Host", "", true},
		{"IPv4 literal with port", "10.0.0.7:9100", true},
		{"IPv6 literal in brackets", "[::1]:9100", true},
		{"listed name, other case, trailing dot", "GitGate-Peers.gitgate.svc.:9000", true},
		{"localhost", "localhost", true},
		{"rebound attacker name", "evil.example:9100", false},
		{"listed name as a suffix only", "x.gitgate-peers.gitgate.svc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := HostAllowed(tt.host, names); got != tt.want {
				t.Fatalf("HostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}
