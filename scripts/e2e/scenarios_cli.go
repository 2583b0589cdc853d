package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "z-cli-cobra",
		criterion: "the real agent binary, against a running agent at c2: `agent __complete rollback ''` (what the shell " +
			"completion calls) offers c2 and c1 with their subjects; `agent rollback -hold` (one dash) exits 2 naming " +
			"--hold and changes nothing (c2 still served); `agent rollback <c1> --hold -o json` pins c1 and prints JSON; " +
			"`agent status -o yaml` says pinned; with the agent stopped, `agent status` exits 3 and completion offers " +
			"nothing and exits 0; `agent version` and `gateway --version` name the Go version",
		run: cliCobra,
	})
}

// runBin runs bin with args and returns its exit code, stdout and stderr.
func runBin(ctx context.Context, bin string, args ...string) (int, string, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stdout.String(), stderr.String(), nil
	}
	return 0, stdout.String(), stderr.String(), err
}

func cliCobra(ctx context.Context, t *T) error {
	st, c1, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	ctl := []string{"--control-socket", st.ControlSocket}

	code, out, errOut, err := runBin(ctx, t.bins.Agent, append(append([]string{"__complete", "rollback"}, ctl...), "")...)
	if err != nil || code != 0 {
		return fmt.Errorf("agent __complete rollback: exit %d %v: %s", code, err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], short(c2)+"\tapplied: c2") || !strings.HasPrefix(lines[1], short(c1)+"\tapplied: c1") || !strings.HasPrefix(lines[2], ":") {
		return fmt.Errorf("completion of agent rollback offered:\n%s\nwant c2 (%s) then c1 (%s) and a directive", out, short(c2), short(c1))
	}
	t.Logf("agent rollback <TAB> offers %q, %q", lines[0], lines[1])

	code, _, errOut, err = runBin(ctx, t.bins.Agent, append([]string{"rollback", "-hold"}, ctl...)...)
	if err != nil || code != 2 || !strings.Contains(errOut, "--hold") {
		return fmt.Errorf("agent rollback -hold: exit %d %v, stderr %q; want 2 naming --hold", code, err, errOut)
	}
	if err := expectServing(st, "c2", 5); err != nil {
		return fmt.Errorf("after a refused one-dash rollback: %w", err)
	}
	t.Logf("agent rollback -hold: exit 2, %s", strings.TrimSpace(errOut))

	code, out, errOut, err = runBin(ctx, t.bins.Agent, append([]string{"rollback", c1[:8], "--hold", "-o", "json"}, ctl...)...)
	var res struct {
		SHA string `json:"sha"`
	}
	if err != nil || code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.SHA != c1 {
		return fmt.Errorf("agent rollback %s --hold -o json: exit %d %v: %s %s", c1[:8], code, err, out, errOut)
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return err
	}
	out, err = st.CLI(ctx, "status", "-o", "yaml")
	if err != nil || !strings.Contains(out, "mode: pinned") {
		return fmt.Errorf("agent status -o yaml: %v:\n%s", err, out)
	}
	t.Logf("rolled back to %s with -o json; status -o yaml says mode: pinned", short(c1))

	if err := st.Agent.Stop(); err != nil {
		t.Logf("agent stopped: %v", err)
	}
	st.Agent = nil
	code, _, errOut, err = runBin(ctx, t.bins.Agent, append([]string{"status"}, ctl...)...)
	if err != nil || code != 3 {
		return fmt.Errorf("agent status with no agent running: exit %d %v (%s), want 3", code, err, errOut)
	}
	code, out, _, err = runBin(ctx, t.bins.Agent, append(append([]string{"__complete", "rollback"}, ctl...), "")...)
	if err != nil || code != 0 || strings.Contains(out, "\t") {
		return fmt.Errorf("completion with no agent running: exit %d %v, offered %q", code, err, out)
	}
	t.Logf("agent stopped: status exits 3, completion offers nothing")

	for _, c := range []struct{ bin, name string }{{t.bins.Agent, "version"}, {t.bins.Gateway, "--version"}} {
		code, out, errOut, err := runBin(ctx, c.bin, c.name)
		if err != nil || code != 0 || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "(commit ") {
			return fmt.Errorf("%s %s: exit %d %v: %q %s", c.bin, c.name, code, err, out, errOut)
		}
		t.Logf("%s", strings.TrimSpace(out))
	}
	return nil
}
