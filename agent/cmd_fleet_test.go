package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/agent/internal/fleet"
)

// replicaServer serves GET /v1/replica with r on a real listener.
func replicaServer(t *testing.T, r fleet.Replica) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET "+fleet.ReplicaPath, fleet.Handler(func(context.Context) fleet.Replica {
		r.Time = time.Now()
		return r
	}, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestAgentFleetExitCode queries real replicas: a healthy fleet exits 0;
// a drifted, lagging or unreachable replica makes it exit 1 and is named.
func TestAgentFleetExitCode(t *testing.T) {
	t.Parallel()
	const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	on := func(desired, running string, appliedAgo time.Duration) fleet.Replica {
		return fleet.Replica{AgentVersion: "dev", Mode: "tracking", Desired: desired, AppliedAt: time.Now().Add(-appliedAgo),
			Gateway: fleet.Gateway{Reachable: true, Version: running, Digest: "sha256:abcdef0123456789"}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name     string
		replicas []fleet.Replica
		flags    []string
		dead     bool // add a replica nobody listens for
		want     int
		wantText string
	}{
		{name: "healthy", replicas: []fleet.Replica{on(c2, c2, time.Minute), on(c2, c2, time.Minute)}, want: 0, wantText: "healthy"},
		{name: "hand-edited gateway", replicas: []fleet.Replica{on(c2, c2, time.Minute), on(c2, "hand", time.Minute)}, want: 1, wantText: "drift: gateway runs hand"},
		{name: "lagging replica", replicas: []fleet.Replica{on(c2, c2, 5*time.Minute), on(c1, c1, time.Hour)}, want: 1, wantText: "lags 5m"},
		{name: "lagging within --max-lag", replicas: []fleet.Replica{on(c2, c2, 5*time.Minute), on(c1, c1, time.Hour)}, flags: []string{"--max-lag", "10m"}, want: 0, wantText: "healthy"},
		{name: "unreachable replica", replicas: []fleet.Replica{on(c2, c2, time.Minute)}, dead: true, want: 1, wantText: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var addrs []string
			for _, r := range tt.replicas {
				addrs = append(addrs, replicaServer(t, r))
			}
			if tt.dead {
				addrs = append(addrs, gone)
			}
			args := append([]string{"--peers", strings.Join(addrs, ",")}, tt.flags...)
			var out, errOut bytes.Buffer
			if code := runFleet(context.Background(), args, &out, &errOut); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.want, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantText) {
				t.Fatalf("output lacks %q:\n%s", tt.wantText, out.String())
			}
			out.Reset()
			code := runFleet(context.Background(), append(args, "--json"), &out, &errOut)
			var rep fleetReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("--json: %v\n%s", err, out.String())
			}
			if len(rep.Replicas) != len(addrs) || rep.Healthy != (code == 0) || code != tt.want {
				t.Fatalf("--json: exit %d, %+v", code, rep)
			}
		})
	}
}

// TestAgentFleetReadsPeersFromConfig checks that --config agent.yaml
// gives the peers, and that no peers at all is a usage error.
func TestAgentFleetReadsPeersFromConfig(t *testing.T) {
	t.Parallel()
	now := time.Now()
	addr := replicaServer(t, fleet.Replica{AgentVersion: "dev", Mode: "tracking", Desired: "c", AppliedAt: now,
		Gateway: fleet.Gateway{Reachable: true, Version: "c"}})
	file := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(file, []byte("repo: x\nwebhookAddr: :9000\npeers: "+addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "peers from agent.yaml", args: []string{"--config", file}, want: 0},
		{name: "no peers", args: nil, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			if code := runFleet(context.Background(), tt.args, &out, &errOut); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.want, out.String(), errOut.String())
			}
		})
	}
}
