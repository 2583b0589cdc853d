// Command agent syncs a Git config repository to the colocated gitgate
// gateway, and validates, bundles and diffs config directories for CI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/gitgate/gitgate/schemas/load/budget"
)

// command is one subcommand: it parses its own flags from args and returns
// the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"validate": {"validate a config directory (exit 1 when invalid)", runValidate},
	"schema":   {"print the config schema (--format jsonschema|cue)", runSchema},
	"bundle":   {"print the bundle the agent would hand to the gateway", runBundle},
	"diff":     {"print the route-level plan between two configs", runDiff},
	"run":      {"run the sync agent", runRun},
	"status":   {"show what the running agent tracks and serves", runStatus},
	"history":  {"list the running agent's sync attempts", runHistory},
	"sync":     {"ask the running agent to sync now", runSync},
	"rollback": {"apply an earlier commit and pin every replica to it (--repo: straight in the repository)", runRollback},
	"resume":   {"lift the pin and track the branch again (--repo: straight in the repository)", runResume},
	"fleet":    {"show every replica's versions, pin and lag (exit 1 on drift)", runFleet},
	"version":  {"print the version", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: agent <command> [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'agent <command> --help' for a command's flags.")
}

func main() {
	// The agent evaluates CUE files in a child process of itself.
	budget.ChildMain()
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage(os.Stdout)
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "agent: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
