package load

import (
	"slices"
	"testing"
)

// TestUpgradesList checks what the loader makes of a route's upgrades: the
// default when unset, nothing when empty (not the default), and the list
// as written.
func TestUpgradesList(t *testing.T) {
	t.Parallel()
	const head = "upstreams: {app: {targets: [\"http://127.0.0.1:9001\"]}}\n" +
		"routes:\n  r:\n    match: {path: /}\n    backends: [{upstream: app, weight: 100}]\n"
	tests := []struct {
		name string
		line string
		want []string
	}{
		{name: "unset", want: []string{"websocket"}},
		{name: "empty", line: "    upgrades: []\n", want: []string{}},
		{name: "listed", line: "    upgrades: [websocket, connect-udp]\n", want: []string{"websocket", "connect-udp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := Files([]File{{Path: "r.yaml", Data: []byte(head + tt.line)}}, Limits{})
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			got := res.Config.Routes["r"].Upgrades
			if got == nil || !slices.Equal(got, tt.want) {
				t.Fatalf("upgrades %#v, want %#v", got, tt.want)
			}
		})
	}
}
