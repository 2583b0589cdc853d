package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/schemas/buildinfo"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=..."; "dev" means not set.
var version = "dev"

// agentVersion is the version the agent reports (fleet rows, agent version).
func agentVersion() string { return buildinfo.Read(version).Version }

func defineVersion(fs *pflag.FlagSet) body {
	var out outputFlags
	out.register(fs)
	return func(_ context.Context, _ []string, stdout, stderr io.Writer) int {
		format, err := out.resolve()
		if err != nil {
			fmt.Fprintf(stderr, "agent version: %v\n", err)
			return exitUsage
		}
		info := buildinfo.Read(version)
		if format != "table" {
			_ = writeData(stdout, format, info)
			return exitOK
		}
		fmt.Fprintln(stdout, info.String("agent"))
		return exitOK
	}
}
