package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/gitgate/gitgate", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}
	checkout := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/gitgate/gitgate", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "feedbeef"}, {Key: "vcs.modified", Value: "false"}}}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		ok       bool
		override string
		want     string
	}{
		{"tagged and modified", stamped, true, "", "agent v1.4.0 (commit 0123abcd, modified, go1.26.8)"},
		{"checkout", checkout, true, "dev", "agent (devel) (commit feedbeef, go1.26.8)"},
		{"ldflags override wins", checkout, true, "v9.9.9", "agent v9.9.9 (commit feedbeef, go1.26.8)"},
		{"no build info", nil, false, "", "agent (devel) (commit unknown, "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromBuildInfo(tt.bi, tt.ok, tt.override).String("agent")
			if len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Fatalf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
}
