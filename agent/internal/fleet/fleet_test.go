package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	c1 = "1111111111111111111111111111111111111111"
	c2 = "2222222222222222222222222222222222222222"
)

// replica returns a healthy replica that applied desired ago before its
// clock time at.
func replica(desired string, ago time.Duration, at time.Time) *Replica {
	return &Replica{AgentVersion: "dev", Mode: "tracking", Desired: desired, AppliedAt: at.Add(-ago), Time: at,
		Gateway: Gateway{Reachable: true, Version: desired, Digest: "sha256:" + desired[:4]}}
}

// TestJudge checks drift, lag, unreachable replicas and local pins.
func TestJudge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	skewed := now.Add(time.Hour) // a replica whose clock is an hour ahead
	tests := []struct {
		name     string
		rows     []Row
		desired  string
		healthy  bool
		problems []string // per row, joined; "" for none
		lag      []time.Duration
	}{
		{name: "all on the same commit", desired: c2, healthy: true,
			rows:     []Row{{Replica: replica(c2, time.Minute, now)}, {Replica: replica(c2, 50*time.Second, skewed)}},
			problems: []string{"", ""}, lag: []time.Duration{0, 0}},
		{name: "one behind, within max lag", desired: c2, healthy: true,
			rows:     []Row{{Replica: replica(c2, time.Minute, now)}, {Replica: replica(c1, time.Hour, now)}},
			problems: []string{"", ""}, lag: []time.Duration{0, time.Minute}},
		{name: "one behind for longer than max lag, clocks skewed", desired: c2,
			rows:     []Row{{Replica: replica(c2, 3*time.Minute, skewed)}, {Replica: replica(c1, time.Hour, now)}},
			problems: []string{"", "lags 3m0s behind 222222222222 (max 2m0s)"}, lag: []time.Duration{0, 3 * time.Minute}},
		{name: "a rollback is the newest decision", desired: c1,
			rows:     []Row{{Replica: replica(c1, 5*time.Minute, now)}, {Replica: replica(c2, 10*time.Minute, now)}},
			problems: []string{"", "lags 5m0s behind 111111111111 (max 2m0s)"}, lag: []time.Duration{0, 5 * time.Minute}},
		{name: "drift: gateway edited by hand", desired: c2,
			rows: []Row{{Replica: replica(c2, time.Minute, now)}, {Replica: func() *Replica {
				r := replica(c2, time.Minute, now)
				r.Gateway.Version = "hand-edit"
				return r
			}()}},
			problems: []string{"", "drift: gateway runs hand-edit, desired 222222222222"}, lag: []time.Duration{0, 0}},
		{name: "gateway down", desired: c2,
			rows: []Row{{Replica: func() *Replica {
				r := replica(c2, time.Minute, now)
				r.Gateway = Gateway{Error: "connection refused"}
				return r
			}()}},
			problems: []string{"gateway unreachable"}, lag: []time.Duration{0}},
		{name: "unreachable replica", desired: c2,
			rows:     []Row{{Replica: replica(c2, time.Minute, now)}, {Addr: "10.0.0.9:8080", Err: "unreachable: connection refused"}},
			problems: []string{"", "unreachable"}, lag: []time.Duration{0, 0}},
		{name: "a local pin is judged on drift only", desired: c2, healthy: true,
			rows: []Row{{Replica: replica(c2, 10*time.Minute, now)}, {Replica: func() *Replica {
				r := replica(c1, time.Minute, now)
				r.Mode, r.Pin = "pinned", &Pin{SHA: c1, Scope: ScopeLocal}
				return r
			}()}},
			problems: []string{"", ""}, lag: []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := Judge(tt.rows, 2*time.Minute, now)
			if v.Desired != tt.desired || v.Healthy != tt.healthy {
				t.Fatalf("verdict %+v, want desired %s healthy %v", v, tt.desired, tt.healthy)
			}
			for i, r := range tt.rows {
				if got := strings.Join(r.Problems, "; "); got != tt.problems[i] {
					t.Errorf("row %d problems %q, want %q", i, got, tt.problems[i])
				}
				if r.Lag != tt.lag[i] {
					t.Errorf("row %d lag %s, want %s", i, r.Lag, tt.lag[i])
				}
			}
		})
	}
}

// TestHandlerRefusesRebinding sends raw requests with forged Host headers
// to a real listener: names other than localhost and the peers' name get
// 421; IP literals and allowed names get the replica.
func TestHandlerRefusesRebinding(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.Handle("GET "+ReplicaPath, Handler(func(context.Context) Replica { return *replica(c2, 0, now) }, []string{"agents.prod.svc.cluster.local"}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		host string
		want int
	}{
		{name: "IPv4 literal", host: "10.1.2.3:8080", want: http.StatusOK},
		{name: "IPv6 literal", host: "[fd00::1]:8080", want: http.StatusOK},
		{name: "localhost", host: "localhost:8080", want: http.StatusOK},
		{name: "peers name, any case, trailing dot", host: "Agents.prod.svc.cluster.local.:8080", want: http.StatusOK},
		{name: "rebound name", host: "evil.example:8080", want: http.StatusMisdirectedRequest},
		{name: "a name under the peers name", host: "x.agents.prod.svc.cluster.local", want: http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", ReplicaPath, tt.host)
			var code int
			if _, err := fmt.Fscanf(c, "HTTP/1.1 %d", &code); err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Fatalf("Host %q: %d, want %d", tt.host, code, tt.want)
			}
		})
	}
}

// TestQueryReadsEveryReplica queries two live replicas, one that answers
// an error and one closed port: rows keep the order and say what failed.
func TestQueryReadsEveryReplica(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	var addrs []string
	for _, d := range []string{c1, c2} {
		mux := http.NewServeMux()
		mux.Handle("GET "+ReplicaPath, Handler(func(context.Context) Replica { return *replica(d, 0, now) }, nil))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	old := httptest.NewServer(http.NotFoundHandler()) // an agent without the fleet view
	t.Cleanup(old.Close)
	addrs = append(addrs, strings.TrimPrefix(old.URL, "http://"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	addrs = append(addrs, closed)

	rows := Query(context.Background(), &http.Client{}, addrs, 2, 5*time.Second)
	var got []string
	for i, r := range rows {
		if r.Addr != addrs[i] {
			t.Fatalf("row %d is %s, want %s", i, r.Addr, addrs[i])
		}
		switch {
		case r.Replica != nil:
			got = append(got, r.Replica.Desired[:1])
		case strings.Contains(r.Err, "404"):
			got = append(got, "404")
		case strings.HasPrefix(r.Err, "unreachable"):
			got = append(got, "unreachable")
		default:
			got = append(got, r.Err)
		}
	}
	if want := []string{"1", "2", "404", "unreachable"}; !slices.Equal(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
}
