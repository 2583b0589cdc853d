package upstream

import (
	"slices"
	"testing"
)

func TestResolverNames(t *testing.T) {
	t.Parallel()
	k8s := &Resolver{ndots: 5, search: []string{"prod.svc.cluster.local.", "svc.cluster.local."}}
	tests := []struct {
		name string
		r    *Resolver
		in   string
		want []string
	}{
		{"given server: as it is", &Resolver{ndots: 1}, "api.test", []string{"api.test."}},
		{"given server: single label", &Resolver{ndots: 1}, "api", []string{"api."}},
		{"final dot: as it is only", k8s, "api.example.com.", []string{"api.example.com."}},
		{"fewer dots than ndots: search list first", k8s, "api", []string{"api.prod.svc.cluster.local.", "api.svc.cluster.local.", "api."}},
		{"ndots dots or more: as it is first", &Resolver{ndots: 2, search: []string{"corp."}}, "a.b.c", []string{"a.b.c.", "a.b.c.corp."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.r.names(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("names(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewResolver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		server  string
		wantErr bool
	}{
		{"host and port", "127.0.0.1:53", false},
		{"ipv6", "[::1]:5353", false},
		{"no port", "127.0.0.1", true},
		{"port zero", "127.0.0.1:0", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewResolver(tc.server); (err != nil) != tc.wantErr {
				t.Fatalf("NewResolver(%q): %v, want error %v", tc.server, err, tc.wantErr)
			}
		})
	}
}
