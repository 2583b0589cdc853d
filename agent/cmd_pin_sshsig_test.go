package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRollbackRepoSSHSignatures: `agent rollback --repo --trusted-keys`
// with an SSH allowed_signers file pins a commit the git CLI signed with a
// listed key (gpg.format=ssh), refuses an unsigned one and one signed by
// another key, and refuses a file it cannot read as either format with the
// file and line.
func TestRollbackRepoSSHSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys := t.TempDir()
	sshKeygen := func(name string) (priv, pub string) {
		priv = filepath.Join(keys, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", priv).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		b, err := os.ReadFile(priv + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return priv, strings.TrimSpace(string(b))
	}
	listed, listedPub := sshKeygen("listed")
	other, _ := sshKeygen("other")
	signers := filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(signers, []byte("t@example.com "+listedPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noPrincipals := filepath.Join(keys, "no_principals")
	if err := os.WriteFile(noPrincipals, []byte("# copied from listed.pub\n"+listedPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	pinGit(t, work, "init", "-q", "-b", "main")
	n := 0
	commit := func(key string) string {
		n++
		cfg := "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:" + strconv.Itoa(9000+n) + "\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n"
		if err := os.WriteFile(filepath.Join(work, "gitgate.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		pinGit(t, work, "add", "-A")
		args := []string{"commit", "-q", "-m", "c"}
		if key != "" {
			args = append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}, append(args, "-S")...)
		}
		pinGit(t, work, args...)
		return pinGit(t, work, "rev-parse", "HEAD")
	}
	good := commit(listed)
	byOther := commit(other)
	unsigned := commit("")
	bare := filepath.Join(t.TempDir(), "config.git")
	pinGit(t, work, "clone", "-q", "--bare", work, bare)

	tests := []struct {
		name     string
		keys     string
		rev      string
		wantCode int
		wantOut  string
	}{
		{"unsigned commit refused", signers, unsigned, 1, "not signed"},
		{"commit by a key not listed refused", signers, byOther, 1, "not in allowed_signers"},
		{"file without principals refused", noPrincipals, good, 1, noPrincipals + ": line 2: a public key without principals"},
		{"commit by the listed key pinned", signers, good, 0, "Pinned"},
	}
	for _, tc := range tests { // in order: the last one writes the pin
		var stdout, stderr bytes.Buffer
		code := runRollback(ctx, []string{"--repo", bare, "--trusted-keys", tc.keys, tc.rev[:12]}, &stdout, &stderr)
		if code != tc.wantCode || !strings.Contains(stdout.String()+stderr.String(), tc.wantOut) {
			t.Fatalf("%s: exit %d, want %d; output %q %q, want %q", tc.name, code, tc.wantCode, stdout.String(), stderr.String(), tc.wantOut)
		}
	}
	if got := pinGit(t, bare, "rev-parse", "refs/tags/gitgate/main/pin^{commit}"); got != good {
		t.Fatalf("pin at %s, want the signed commit %s", got, good)
	}
}
