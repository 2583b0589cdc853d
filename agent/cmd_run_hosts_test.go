package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/rs/zerolog"
)

// TestAgentWebhookFromEachHost runs the wired agent and pushes a commit
// from each host's route: a signed push to the tracked branch syncs it.
func TestAgentWebhookFromEachHost(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first", cfgYAML("9001"))
	gw := admintest.New(t)
	state, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	secretFile := filepath.Join(state, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: gw.Sock, StateDir: state,
		ControlSocket: filepath.Join(state, "agent.sock"), WebhookAddr: addr, PollInterval: "1h",
		WebhookSecretFile: secretFile, KeepBundles: 100, LogLevel: "info"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runAgent: %v", err)
		}
	})
	waitUntil(t, "first commit served", func() bool { return gw.Version() == first })

	mac := func(body string) string {
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write([]byte(body))
		return hex.EncodeToString(m.Sum(nil))
	}
	tests := []struct {
		name, path, body string
		headers          func(body string) map[string]string
	}{
		{"gitlab", "/webhooks/gitlab", `{"object_kind":"push","ref":"refs/heads/main","project":{"path_with_namespace":"acme/config"}}`,
			func(string) map[string]string {
				return map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret"}
			}},
		{"forgejo", "/webhooks/gitea", `{"ref":"refs/heads/main","repository":{"full_name":"acme/config"}}`,
			func(b string) map[string]string {
				return map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Signature": mac(b)}
			}},
		{"bitbucket", "/webhooks/bitbucket", `{"repository":{"full_name":"acme/config"},"push":{"changes":[{"new":{"type":"branch","name":"main"}}]}}`,
			func(b string) map[string]string {
				return map[string]string{"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + mac(b)}
			}},
	}
	for i, tc := range tests {
		// Not parallel: each step commits to the one repository.
		sha := commitConfig(t, repo, tc.name, cfgYAML(string(rune('2'+i))+"002"))
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.headers(tc.body) {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s push: %d, want 202", tc.name, resp.StatusCode)
		}
		waitUntil(t, tc.name+" webhook-triggered sync", func() bool { return gw.Version() == sha })
	}
}
