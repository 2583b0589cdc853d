package peers

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestNewSetParses checks the --peers forms and refuses malformed ones
// with ErrBadSpec.
func TestNewSetParses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		spec    string
		want    []string
		wantErr bool
	}{
		{name: "empty", spec: "", want: []string{}},
		{name: "static list", spec: "10.0.0.1:8080, 10.0.0.2:8080,[::1]:9", want: []string{"10.0.0.1:8080", "10.0.0.2:8080", "[::1]:9"}},
		{name: "dns name", spec: "dns:agents.ns.svc:8080", want: []string{"10.0.0.1:8080", "[fd00::1]:8080"}},
		{name: "dns without port", spec: "dns:agents", wantErr: true},
		{name: "dns bad port", spec: "dns:agents:http", wantErr: true},
		{name: "static without port", spec: "10.0.0.1", wantErr: true},
		{name: "static port out of range", spec: "10.0.0.1:70000", wantErr: true},
		{name: "empty entry", spec: "10.0.0.1:1,,", wantErr: true},
	}
	lookup := func(_ context.Context, host string) ([]string, error) {
		if host != "agents.ns.svc" {
			return nil, errors.New("no such host")
		}
		return []string{"fd00::1", "10.0.0.1"}, nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSet(tt.spec, SetOptions{Lookup: lookup})
			if tt.wantErr {
				if !errors.Is(err, ErrBadSpec) {
					t.Fatalf("NewSet(%q) = %v, want ErrBadSpec", tt.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Addrs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Addrs = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSetReresolvesDNSAfterTheCache scales a headless Service up and down
// behind a resolver function: the Set sees it once its short cache ends,
// and leaves itself out.
func TestSetReresolvesDNSAfterTheCache(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	records := []string{"10.0.0.1", "10.0.0.2"}
	lookup := func(_ context.Context, _ string) ([]string, error) {
		calls.Add(1)
		return slices.Clone(records), nil
	}
	clk := &clock{now: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)}
	s, err := NewSet("dns:agents:8080", SetOptions{Lookup: lookup, CacheTTL: 5 * time.Second, Now: clk.Now,
		SelfPort: "8080", SelfIPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		records   []string
		advance   time.Duration
		want      []string
		wantCalls int32
	}{
		{name: "first call resolves, self left out", records: []string{"10.0.0.1", "10.0.0.2"}, want: []string{"10.0.0.1:8080"}, wantCalls: 1},
		{name: "scaled up, inside the cache", records: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, advance: time.Second, want: []string{"10.0.0.1:8080"}, wantCalls: 1},
		{name: "cache over: new pod seen", advance: 5 * time.Second, want: []string{"10.0.0.1:8080", "10.0.0.3:8080"}, wantCalls: 2},
		{name: "scaled down", records: []string{"10.0.0.2", "10.0.0.3"}, advance: 6 * time.Second, want: []string{"10.0.0.3:8080"}, wantCalls: 3},
	}
	for _, st := range steps {
		if st.records != nil {
			records = st.records
		}
		clk.Add(st.advance)
		got, err := s.Addrs(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !slices.Equal(got, st.want) || calls.Load() != st.wantCalls {
			t.Fatalf("%s: Addrs = %q after %d lookups, want %q after %d", st.name, got, calls.Load(), st.want, st.wantCalls)
		}
	}
}

// TestSetLeavesItselfOut checks which addresses count as this replica:
// its port at one of its IPs, by literal or by a name that resolves there.
func TestSetLeavesItselfOut(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "me.local":
			return []string{"127.0.0.1"}, nil
		case "other.local":
			return []string{"10.9.9.9"}, nil
		}
		return nil, errors.New("no such host")
	}
	s, err := NewSet("127.0.0.1:8080,127.0.0.1:8081,10.0.0.5:8080,me.local:8080,other.local:8080,gone.local:8080,[::ffff:127.0.0.1]:8080",
		SetOptions{Lookup: lookup, SelfPort: "8080", SelfIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Addrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:8081", "10.0.0.5:8080", "other.local:8080", "gone.local:8080"}
	if !slices.Equal(got, want) {
		t.Fatalf("Addrs = %q, want %q", got, want)
	}
	all, _ := s.All(context.Background())
	if len(all) != 7 {
		t.Fatalf("All = %q, want all 7", all)
	}
}
