package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// debianTool is a program a scenario needs from one of Debian's packages.
type debianTool struct {
	name string // the program, looked up in PATH
	path string // where the package installs it when not in PATH; "" for PATH only
	pkg  string // the Debian package that has it
}

// ensureTool returns the path of tool, installing its package with apt-get
// when it is missing (root only: the battery runs as root in CI; otherwise
// the scenario is skipped). A service the package would start is not used:
// scenarios run their own daemons in the foreground.
func ensureTool(ctx context.Context, t *T, tool debianTool) (string, error) {
	if p, ok := findTool(tool); ok {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", Skip(fmt.Sprintf("%s is not installed and installing %s needs root", tool.name, tool.pkg))
	}
	t.Logf("%s missing: installing %s with apt-get", tool.name, tool.pkg)
	install := func() ([]byte, error) {
		c := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", tool.pkg)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return c.CombinedOutput()
	}
	if _, err := install(); err != nil {
		if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get update: %w\n%s", err, out)
		}
		if out, err := install(); err != nil {
			return "", fmt.Errorf("apt-get install %s: %w\n%s", tool.pkg, err, out)
		}
	}
	if p, ok := findTool(tool); ok {
		return p, nil
	}
	return "", fmt.Errorf("%s installed but %s is not found (looked in PATH and at %q)", tool.pkg, tool.name, tool.path)
}

// findTool returns where tool is, if anywhere: its package's path first.
func findTool(tool debianTool) (string, bool) {
	if tool.path != "" {
		if _, err := os.Stat(tool.path); err == nil {
			return tool.path, true
		}
	}
	if p, err := exec.LookPath(tool.name); err == nil {
		return p, true
	}
	return "", false
}
