package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "j-ssh-known-hosts",
		criterion: "with Debian's openssh-server (installed when missing), the agent's Git source clones over SSH from a " +
			"real sshd on loopback (own config and host keys, git-upload-pack as the current user) with a known_hosts " +
			"holding only the ed25519 key, only the RSA key, and both; a file with another key fails with " +
			"\"key mismatch\" and one naming another host with \"key is unknown\" (agent/internal/gitsrc " +
			"TestSSHKnownHosts, run with sshd required)",
		run: sshKnownHosts,
	})
}

// sshdBinary is where Debian's openssh-server puts sshd.
const sshdBinary = "/usr/sbin/sshd"

func sshKnownHosts(ctx context.Context, t *T) error {
	if err := ensureSSHD(ctx, t); err != nil {
		return err
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^TestSSHKnownHosts$", "./agent/internal/gitsrc/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GITGATE_REQUIRE_SSHD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("TestSSHKnownHosts against a real sshd: %w\n%s", err, out)
	}
	passed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "--- PASS: TestSSHKnownHosts/") {
			t.Logf("%s", l)
			passed++
		}
		if strings.Contains(line, "--- SKIP") {
			return fmt.Errorf("TestSSHKnownHosts skipped although sshd is required:\n%s", out)
		}
	}
	if passed != 5 {
		return fmt.Errorf("%d of 5 known_hosts cases passed:\n%s", passed, out)
	}
	return nil
}

// ensureSSHD installs openssh-server when sshd is missing (root only: the
// battery runs as root in CI). Its service is not started; tests run their
// own sshd in the foreground.
func ensureSSHD(ctx context.Context, t *T) error {
	if _, err := os.Stat(sshdBinary); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return Skip("sshd is not installed and installing openssh-server needs root")
	}
	t.Logf("sshd missing: installing openssh-server with apt-get")
	install := func() ([]byte, error) {
		c := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server")
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return c.CombinedOutput()
	}
	if _, err := install(); err != nil {
		if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %w\n%s", err, out)
		}
		if out, err := install(); err != nil {
			return fmt.Errorf("apt-get install openssh-server: %w\n%s", err, out)
		}
	}
	if _, err := os.Stat(sshdBinary); err != nil {
		return fmt.Errorf("openssh-server installed but %s is missing: %w", sshdBinary, err)
	}
	return nil
}
