package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// TestWriteStatusShowsGatewayWarning checks that `agent status` shows the
// gateway's warning in both its forms.
func TestWriteStatusShowsGatewayWarning(t *testing.T) {
	t.Parallel()
	const warn = "applied, but not saved as last-known-good: no space left on device"
	tests := []struct {
		name    string
		warning string
	}{
		{name: "warning shown", warning: warn},
		{name: "no warning, no line", warning: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := syncer.Status{Repo: "/repo", Branch: "main", GatewayReachable: true, GatewayVersion: "0123456789abcdef", GatewayWarning: tt.warning}
			var human bytes.Buffer
			writeStatus(&human, st)
			if got := strings.Contains(human.String(), "Gateway warns: "+warn); got != (tt.warning != "") {
				t.Fatalf("human output (warning %q):\n%s", tt.warning, human.String())
			}
			var js bytes.Buffer
			_ = writeData(&js, "json", st)
			var back map[string]any
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if got, _ := back["gatewayWarning"].(string); got != tt.warning {
				t.Fatalf("JSON gatewayWarning %q, want %q:\n%s", got, tt.warning, js.String())
			}
		})
	}
}

// TestWriteStatusShowsDrift checks that `agent status` says when the
// gateway runs another version than the one the agent applied (a hand
// edit), instead of naming only the applied one.
func TestWriteStatusShowsDrift(t *testing.T) {
	t.Parallel()
	const applied, hand = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	tests := []struct {
		name    string
		running string
		drift   bool
	}{
		{name: "gateway on the applied version", running: applied},
		{name: "gateway edited by hand", running: hand, drift: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := syncer.Status{Repo: "/repo", Branch: "main", LastApplied: applied, GatewayReachable: true, GatewayVersion: tt.running}
			var out bytes.Buffer
			writeStatus(&out, st)
			if got := strings.Contains(out.String(), "not the applied 111111111111"); got != tt.drift {
				t.Fatalf("drift shown %v, want %v:\n%s", got, tt.drift, out.String())
			}
		})
	}
}
