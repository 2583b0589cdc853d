package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "n-ssh-known-hosts",
		criterion: "with Debian's openssh-server (installed when missing) and a real sshd on loopback (own config, " +
			"ed25519 and RSA host keys, git-upload-pack as the current user): the agent binary tracks the repository " +
			"over ssh:// with a known_hosts holding only the ed25519 key (as `ssh-keyscan -t ed25519` writes it) and " +
			"serves c1; restarted with a known_hosts holding another key it applies nothing, status shows " +
			"\"key mismatch\" and c1 keeps serving; with the right file again c2 is applied; and the Git source " +
			"passes agent/internal/gitsrc TestSSHKnownHosts (ed25519-only, RSA-only, both, mismatch, unknown host) " +
			"and TestMaxFetchBytesSSH (a pack over --git-max-fetch-bytes refused with no temp file left, one under it fetched) " +
			"with sshd required",
		run: sshKnownHosts,
	})
}

func sshKnownHosts(ctx context.Context, t *T) error {
	if err := ensureSSHD(ctx, t); err != nil {
		return err
	}
	if err := agentOverSSH(ctx, t); err != nil {
		return err
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^(TestSSHKnownHosts|TestMaxFetchBytesSSH)$", "./agent/internal/gitsrc/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GITGATE_REQUIRE_SSHD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("TestSSHKnownHosts and TestMaxFetchBytesSSH against a real sshd: %w\n%s", err, out)
	}
	passed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "--- PASS: TestSSHKnownHosts/") || strings.HasPrefix(l, "--- PASS: TestMaxFetchBytesSSH/") {
			t.Logf("%s", l)
			passed++
		}
		if strings.Contains(line, "--- SKIP") {
			return fmt.Errorf("an SSH test skipped although sshd is required:\n%s", out)
		}
	}
	if passed != 7 {
		return fmt.Errorf("%d of 7 SSH cases (5 known_hosts, 2 fetch cap) passed:\n%s", passed, out)
	}
	return nil
}

// agentOverSSH runs the agent binary against a repository served by sshd.
func agentOverSSH(ctx context.Context, t *T) error {
	srv, err := harness.StartSSHD(filepath.Join(t.dir, "sshd"))
	if err != nil {
		return err
	}
	t.Cleanup(srv.Stop)
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir, RepoURL: srv.URL(filepath.Join(t.dir, "config-repo"))})
	if err != nil {
		return err
	}
	t.Cleanup(st.Close)
	if st.Repo.Dir != filepath.Join(t.dir, "config-repo") {
		return fmt.Errorf("the stack's repository is %s, not where the ssh URL points", st.Repo.Dir)
	}
	c1, err := t.commit(st, "c1")
	if err != nil {
		return err
	}
	if err := st.StartGateway(ctx); err != nil {
		return err
	}
	known := filepath.Join(t.dir, "known_hosts")
	startAgent := func(keys ...string) error {
		if err := srv.KnownHosts(known, "", keys...); err != nil {
			return err
		}
		p, err := harness.Start(t.dir, "agent", append([]string{t.bins.Agent}, append(st.AgentArgs(), "--ssh-key-file", srv.Key, "--known-hosts-file", known)...)...)
		if err != nil {
			return err
		}
		st.Agent = p
		return harness.WaitFor(ctx, 15*time.Second, "the agent's control socket to answer", func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("agent exited: %v (see %s)", p.Err(), p.Log)
			}
			_, err := st.AgentStatus(ctx)
			return err == nil, nil
		})
	}

	if err := startAgent(srv.HostKeys["ssh-ed25519"]); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return fmt.Errorf("ed25519-only known_hosts: %w", err)
	}
	t.Logf("ed25519-only known_hosts: c1 fetched over %s and served", srv.URL("..."))

	if err := st.Agent.Stop(); err != nil {
		return err
	}
	other, err := otherHostKey(t.dir)
	if err != nil {
		return err
	}
	c2, err := t.commit(st, "c2")
	if err != nil {
		return err
	}
	if err := startAgent(other); err != nil {
		return err
	}
	var status harness.AgentStatus
	if err := harness.WaitFor(ctx, 15*time.Second, "status to show the host key mismatch", func() (bool, error) {
		status, err = st.AgentStatus(ctx)
		return err == nil && strings.Contains(status.SourceError, "key mismatch"), nil
	}); err != nil {
		return err
	}
	if status.LastApplied != c1 {
		return fmt.Errorf("with a wrong host key the agent applied %s, want c1 (%s) kept", short(status.LastApplied), short(c1))
	}
	if err := expectServing(st, "c1", 5); err != nil {
		return err
	}
	t.Logf("known_hosts with another key: sourceError %q, c1 still served", status.SourceError)

	if err := st.Agent.Stop(); err != nil {
		return err
	}
	if err := startAgent(srv.HostKeys["ssh-ed25519"]); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return fmt.Errorf("right known_hosts again: %w", err)
	}
	t.Logf("right known_hosts again: c2 applied and served")
	return nil
}

// otherHostKey makes an ed25519 key sshd does not have and returns its
// public key field.
func otherHostKey(dir string) (string, error) {
	path := filepath.Join(dir, "not_the_host_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", path).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ssh-keygen: %w\n%s", err, out)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		return "", err
	}
	return harness.PublicKeyField(string(b))
}

// ensureSSHD installs openssh-server when sshd is missing (root only: the
// battery runs as root in CI). Its service is not started; tests run their
// own sshd in the foreground.
func ensureSSHD(ctx context.Context, t *T) error {
	_, err := ensureTool(ctx, t, debianTool{name: "sshd", path: harness.SSHDBinary, pkg: "openssh-server"})
	return err
}
