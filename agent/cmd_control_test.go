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
			printJSON(&js, st)
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
