package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "m-second-agent-on-state-dir",
		criterion: "a second agent started on a running agent's --state-dir (with the same flags, and with its own " +
			"control socket and webhook address) exits 1 naming the first agent's pid, and the first agent's control " +
			"socket keeps answering; after the first agent is killed with SIGKILL a new one starts on the same " +
			"directory and applies a pushed commit",
		run: secondAgentRefused,
	})
}

func secondAgentRefused(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	own, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	variants := []struct {
		name string
		args []string
	}{
		{"same flags", st.AgentArgs()},
		{"own socket and webhook address", append(st.AgentArgs(), "--control-socket", filepath.Join(t.dir, "second.sock"), "--webhook-addr", own)},
	}
	want := fmt.Sprintf("in use by another agent (pid %d)", st.Agent.Pid())
	for _, v := range variants {
		out, err := exec.CommandContext(ctx, t.bins.Agent, v.args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), want) {
			return fmt.Errorf("second agent (%s): %v, output %q; want exit 1 saying %q", v.name, err, out, want)
		}
		if _, err := st.AgentStatus(ctx); err != nil {
			return fmt.Errorf("the first agent's control socket after a second agent (%s) was refused: %w", v.name, err)
		}
		t.Logf("second agent (%s) refused: %q", v.name, want)
	}

	st.Agent.Kill9()
	if err := st.StartAgent(ctx); err != nil {
		return fmt.Errorf("starting an agent after the holder was killed: %w", err)
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	t.Logf("after SIGKILL of the holder a new agent took the directory and applied c2")
	return nil
}
