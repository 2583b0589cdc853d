package schemas

import (
	"encoding/json"
	"testing"
)

func TestCheckUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{name: "websocket", token: "websocket", ok: true},
		{name: "with a version", token: "HTTP/2.0", ok: true},
		{name: "h2c", token: "h2c"},
		{name: "h2c in capitals", token: "H2C"},
		{name: "empty", token: ""},
		{name: "a space", token: "web socket"},
		{name: "a comma", token: "websocket,h2c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckUpgrade(tt.token); (err == nil) != tt.ok {
				t.Fatalf("CheckUpgrade(%q) = %v, want ok %v", tt.token, err, tt.ok)
			}
		})
	}
}

// TestUpgradesDefaultAndEmptyList checks that an unset list means
// websocket while an empty one, which allows no upgrade, survives the
// bundle's JSON and a second ApplyDefaults.
func TestUpgradesDefaultAndEmptyList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "unset", in: nil, want: []string{UpgradeWebSocket}},
		{name: "empty", in: []string{}, want: []string{}},
		{name: "listed", in: []string{"websocket", "foo"}, want: []string{"websocket", "foo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{Routes: map[string]Route{"r": {Upgrades: tt.in}}}
			c.ApplyDefaults()
			raw, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back Config
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			back.ApplyDefaults()
			got := back.Routes["r"].Upgrades
			if got == nil || len(got) != len(tt.want) {
				t.Fatalf("after JSON and defaults: %#v, want %#v (json %s)", got, tt.want, raw)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("after JSON and defaults: %#v, want %#v", got, tt.want)
				}
			}
		})
	}
}
