package schemas

import (
	"encoding/json"
	"testing"
)

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
