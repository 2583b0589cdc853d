// Package buildinfo reads what a gitgate binary knows about its own build:
// the module version, the VCS commit it was built from and the Go version,
// from runtime/debug.ReadBuildInfo.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Devel is the module version of a binary built without VCS information
// (go run, -buildvcs=false); since Go 1.24 a build in a Git checkout gets a
// pseudo-version instead.
const Devel = "(devel)"

// Info is a binary's build identity.
type Info struct {
	// Version is the -X main.version override when set, else the module
	// version ("v1.2.3", or "(devel)" when built without VCS information).
	Version string `json:"version"`
	// Commit is the VCS revision (vcs.revision); empty when the build did
	// not stamp it (go run, go test, -buildvcs=false).
	Commit string `json:"commit,omitempty"`
	// Modified is true when the work tree had uncommitted changes
	// (vcs.modified).
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"goVersion"`
}

// Read returns the running binary's Info. override is the value of a
// version variable set with -ldflags "-X main.version=..."; "" or "dev"
// means none was set.
func Read(override string) Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, override)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool, override string) Info {
	info := Info{Version: Devel, GoVersion: runtime.Version()}
	if ok && bi != nil {
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if override != "" && override != "dev" {
		info.Version = override
	}
	return info
}

// String formats info as "NAME VERSION (commit C[, modified], GO)", the
// line `agent version` and `gateway --version` print.
func (info Info) String(name string) string {
	commit := "commit unknown"
	if info.Commit != "" {
		commit = "commit " + info.Commit
		if info.Modified {
			commit += ", modified"
		}
	}
	return fmt.Sprintf("%s %s (%s, %s)", name, info.Version, commit, info.GoVersion)
}
