package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// pinGit runs git in dir, isolated from the machine's configuration.
func pinGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRollbackRepoMode: `agent rollback --repo` pins the fleet straight in
// the repository, with no agent, refusing an invalid commit;
// `agent resume --repo` deletes the pin.
func TestRollbackRepoMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	work := t.TempDir()
	pinGit(t, work, "init", "-q", "-b", "main")
	commit := func(content string) string {
		if err := os.WriteFile(filepath.Join(work, "gitgate.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		pinGit(t, work, "add", "-A")
		pinGit(t, work, "commit", "-q", "-m", "c")
		return pinGit(t, work, "rev-parse", "HEAD")
	}
	good := commit("upstreams:\n  web:\n    targets: [\"http://127.0.0.1:9001\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n")
	invalid := commit("routes: 3\n")
	bad := commit("upstreams:\n  web:\n    targets: [\"http://127.0.0.1:9002\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n")
	bare := filepath.Join(t.TempDir(), "config.git")
	pinGit(t, work, "clone", "-q", "--bare", work, bare)

	tests := []struct {
		name     string
		run      func(stdout, stderr *bytes.Buffer) int
		wantCode int
		wantPin  string // the commit the pin tag points at afterwards; "" none
		wantOut  string
	}{
		{"invalid commit refused", func(o, e *bytes.Buffer) int {
			return runRollback(ctx, []string{"--repo", bare, invalid[:10]}, o, e)
		}, 1, "", "its config is invalid"},
		{"rollback pins the fleet", func(o, e *bytes.Buffer) int {
			return runRollback(ctx, []string{"--repo", bare, "--reason", "bad deploy", good[:10]}, o, e)
		}, 0, good, "marked bad"},
		{"resume deletes the pin", func(o, e *bytes.Buffer) int { return runResume(ctx, []string{"--repo", bare}, o, e) }, 0, "", "deleted"},
		{"resume without a pin", func(o, e *bytes.Buffer) int { return runResume(ctx, []string{"--repo", bare}, o, e) }, 1, "", "not pinned"},
	}
	for _, tc := range tests { // in order: each step builds on the last
		var stdout, stderr bytes.Buffer
		code := tc.run(&stdout, &stderr)
		if code != tc.wantCode || !strings.Contains(stdout.String()+stderr.String(), tc.wantOut) {
			t.Fatalf("%s: exit %d, want %d; output %q %q, want %q", tc.name, code, tc.wantCode, stdout.String(), stderr.String(), tc.wantOut)
		}
		got, _ := exec.Command("git", "-C", bare, "rev-parse", "-q", "--verify", "refs/tags/gitgate/main/pin^{commit}").Output()
		if strings.TrimSpace(string(got)) != tc.wantPin {
			t.Fatalf("%s: pin at %q, want %q", tc.name, got, tc.wantPin)
		}
	}
	if got := pinGit(t, bare, "rev-parse", "refs/tags/gitgate/main/bad/"+bad+"^{commit}"); got != bad {
		t.Fatalf("bad mark at %s", got)
	}
	if msg := pinGit(t, bare, "tag", "-l", "-n1", "gitgate/main/bad/*"); !strings.Contains(msg, "bad deploy") {
		t.Fatalf("bad mark's note %q does not say why", msg)
	}
}

// TestWriteStatusSaysPinScope: a local pin says plainly that it holds for
// this replica only.
func TestWriteStatusSaysPinScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, scope, want string
	}{
		{"fleet", bundle.PinFleet, "every replica obeys it"},
		{"local", bundle.PinLocal, "THIS REPLICA ONLY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := syncer.Status{Mode: "pinned", PinScope: tc.scope, PinScopeReason: "no push credential",
				Pin: &bundle.Pin{SHA: strings.Repeat("a", 40), Since: time.Now()}}
			var out bytes.Buffer
			writeStatus(&out, st)
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("status:\n%s\nwant %q", out.String(), tc.want)
			}
		})
	}
}
