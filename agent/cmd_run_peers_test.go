package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseRunConfigPeers checks --peers and the agent.yaml key peers:
// the flag wins, a malformed value and peers without a webhook listener
// are refused.
func TestParseRunConfigPeers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.yaml")
	yaml := "repo: x\ngatewaySocket: /run/gw.sock\nstateDir: /var/lib/agent\nwebhookAddr: :8080\npeers: dns:agents.prod.svc.cluster.local:8080\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--repo", "x", "--gateway-socket", "/run/gw.sock", "--state-dir", "/var/lib/agent"}
	tests := []struct {
		name      string
		args      []string
		wantPeers string
		wantErr   string
	}{
		{name: "from the file", args: []string{"--config", file}, wantPeers: "dns:agents.prod.svc.cluster.local:8080"},
		{name: "flag wins", args: []string{"--config", file, "--peers", "10.0.0.1:8080,10.0.0.2:8080"}, wantPeers: "10.0.0.1:8080,10.0.0.2:8080"},
		{name: "none", args: base},
		{name: "malformed", args: append(base, "--webhook-addr", ":8080", "--peers", "dns:agents"), wantErr: "want dns:NAME:PORT"},
		{name: "without a webhook listener", args: append(base, "--peers", "10.0.0.1:8080"), wantErr: "--peers needs --webhook-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseRunConfig(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Peers != tt.wantPeers {
				t.Fatalf("peers %q, want %q", cfg.Peers, tt.wantPeers)
			}
		})
	}
}
