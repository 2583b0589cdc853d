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
		name: "w-ssh-signatures",
		criterion: "the agent binary with --verify-signatures and --trusted-keys pointing at an SSH allowed_signers file " +
			"(keys made by ssh-keygen, commits signed by the git CLI with gpg.format=ssh): a commit signed by the listed " +
			"ed25519 key is applied and served; one signed by a key not in the file and an unsigned one are recorded as " +
			"rejected (\"not in allowed_signers\", \"not signed\") while the last signed commit keeps serving; a later " +
			"commit signed by the listed key is applied; an agent given a file that mixes an allowed_signers line with a " +
			"PGP key block exits at start naming the file and line",
		run: sshSignatures,
	})
}

func sshSignatures(ctx context.Context, t *T) error {
	keys := filepath.Join(t.dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	ops, opsPub, err := e2eSSHKey(keys, "ops")
	if err != nil {
		return err
	}
	stranger, _, err := e2eSSHKey(keys, "stranger")
	if err != nil {
		return err
	}
	// The harness commits as ops@example.com.
	signers := filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(signers, []byte("# who may change the gateway\nops@example.com "+opsPub+"\n"), 0o644); err != nil {
		return err
	}
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir,
		AgentExtraArgs: []string{"--verify-signatures", "--trusted-keys", signers}})
	if err != nil {
		return err
	}
	t.Cleanup(st.Close)
	c1, err := signedConfigCommit(st, t, "c1", ops)
	if err != nil {
		return err
	}
	if err := st.StartGateway(ctx); err != nil {
		return err
	}
	if err := st.StartAgent(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return err
	}
	t.Logf("c1 signed by ops's listed ed25519 key: applied and served")

	for _, tc := range []struct{ label, key, want string }{
		{"c2", stranger, "not in allowed_signers"},
		{"c3", "", "not signed"},
	} {
		sha, err := signedConfigCommit(st, t, tc.label, tc.key)
		if err != nil {
			return err
		}
		if _, err := st.Webhook(ctx); err != nil {
			return err
		}
		var last harness.Entry
		if err := harness.WaitFor(ctx, 15*time.Second, tc.label+" to be recorded", func() (bool, error) {
			h, err := st.History(ctx)
			if err != nil || len(h) == 0 {
				return false, nil
			}
			last = h[0]
			return last.SHA == sha, nil
		}); err != nil {
			return err
		}
		if last.Result != "rejected" || !strings.Contains(last.Error, tc.want) {
			return fmt.Errorf("%s recorded as %q (%s), want rejected saying %q", tc.label, last.Result, last.Error, tc.want)
		}
		if err := expectServing(st, "c1", 5); err != nil {
			return fmt.Errorf("after %s: %w", tc.label, err)
		}
		t.Logf("%s rejected (%s); c1 still served", tc.label, last.Error)
	}

	c4, err := signedConfigCommit(st, t, "c4", ops)
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c4, "c4"); err != nil {
		return err
	}
	t.Logf("c4 signed by ops's key again: applied and served")

	mixed := filepath.Join(keys, "mixed")
	ring := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot checked before the mix is refused\n-----END PGP PUBLIC KEY BLOCK-----\n"
	if err := os.WriteFile(mixed, []byte("ops@example.com "+opsPub+"\n"+ring), 0o644); err != nil {
		return err
	}
	args := append(st.AgentArgs(), "--trusted-keys", mixed)
	p, err := harness.Start(t.dir, "agent-mixed", append([]string{t.bins.Agent}, args...)...)
	if err != nil {
		return err
	}
	t.Cleanup(func() { _ = p.Stop() })
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		return fmt.Errorf("the agent given a mixed trusted keys file still runs after 15 s (see %s)", p.Log)
	}
	want := "trusted keys " + mixed + ": line 1: an allowed_signers line in a file with PGP key blocks"
	if p.Err() == nil || !logContains(p.Log, want) {
		return fmt.Errorf("the agent given a mixed trusted keys file exited with %v; want an error saying %q (see %s)", p.Err(), want, p.Log)
	}
	t.Logf("an agent given a mixed file exits at start: %q", want)
	return nil
}

// e2eSSHKey makes an ed25519 key pair with ssh-keygen and returns the
// private key's path and the public key line.
func e2eSSHKey(dir, name string) (priv, pub string, err error) {
	priv = filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	b, err := os.ReadFile(priv + ".pub")
	if err != nil {
		return "", "", err
	}
	return priv, strings.TrimSpace(string(b)), nil
}

// signedConfigCommit commits the config labelled label, signed by the SSH
// private key at key with the git CLI (gpg.format=ssh); unsigned when key
// is "".
func signedConfigCommit(st *harness.Stack, t *T, label, key string) (string, error) {
	if err := st.Repo.Write("config.yaml", harness.ConfigYAML(t.upstream, label, nil)); err != nil {
		return "", err
	}
	if _, err := st.Repo.Git("add", "-A"); err != nil {
		return "", err
	}
	args := []string{"commit", "-q", "-m", label}
	if key != "" {
		args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}, append(args, "-S")...)
	}
	if _, err := st.Repo.Git(args...); err != nil {
		return "", err
	}
	return st.Repo.Head()
}
