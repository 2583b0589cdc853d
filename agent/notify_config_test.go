package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/notify"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
)

// TestAgentYAMLNotifications: the notifications section is read strictly
// from agent.yaml, beside the flag table's keys, which stay strict too.
func TestAgentYAMLNotifications(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const required = "repo: x\ngatewaySocket: /run/gw.sock\nstateDir: /var/lib/agent\n"
	const sinks = `notifications:
  syncFailingAfter: 15m
  sinks:
    - name: ops
      type: slack
      urlFile: /run/secrets/slack-url
      events: [rejected, rollback, auto-rollback, sync-failing]
    - name: audit
      type: webhook
      url: https://hooks.example.com/gitgate
      secretEnv: GITGATE_NOTIFY_SECRET
`
	tests := []struct {
		name    string
		yaml    string
		check   func(c runConfig) bool
		wantErr string
	}{
		{name: "two sinks", yaml: required + sinks, check: func(c runConfig) bool {
			n := c.Notifications
			return n != nil && len(n.Sinks) == 2 && n.SyncFailingAfter == "15m" && n.Sinks[0].URLFile == "/run/secrets/slack-url" &&
				len(n.Sinks[0].Events) == 4 && n.Sinks[1].SecretEnv == "GITGATE_NOTIFY_SECRET" && c.KeepBundles == 100
		}},
		{name: "absent", yaml: required, check: func(c runConfig) bool { return c.Notifications == nil }},
		{name: "null", yaml: required + "notifications:\n", check: func(c runConfig) bool { return c.Notifications == nil }},
		{name: "unknown key inside", yaml: required + strings.Replace(sinks, "secretEnv:", "secretValue:", 1), wantErr: `unknown field "secretValue"`},
		{name: "unknown event", yaml: required + strings.Replace(sinks, "sync-failing]", "sync-slow]", 1), wantErr: "notifications.sinks[0].events[3]"},
		{name: "slack URL written inline", yaml: required + strings.Replace(sinks, "urlFile:", "url:", 1), wantErr: "notifications.sinks[0].url: a Slack webhook URL is a secret"},
		{name: "other unknown keys still refused", yaml: required + sinks + "notification: {}\n", wantErr: `unknown field "notification"`},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, strings.Repeat("n", i+1)+".yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			c, err := parseRunConfig([]string{"--config", p}, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("parseRunConfig = %+v, %v", c.Notifications, err)
			}
		})
	}
}

// TestAgentNotifies runs the agent with a webhook sink: an applied and a
// rejected commit reach a real receiver, signed.
func TestAgentNotifies(t *testing.T) {
	t.Parallel()
	const secret = "notify-s3cret"
	var (
		mu     sync.Mutex
		events []notify.Payload
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(r.Header.Get(notify.HeaderTimestamp) + "." + string(body)))
		if !hmac.Equal([]byte(r.Header.Get(notify.HeaderSignature)), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p notify.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, p)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	heard := func() []notify.Payload { mu.Lock(); defer mu.Unlock(); return append([]notify.Payload(nil), events...) }

	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first", cfgYAML("9001"))
	gw := admintest.New(t)
	state, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	secretFile := filepath.Join(state, "notify-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: gw.Sock, StateDir: state,
		ControlSocket: filepath.Join(state, "agent.sock"), PollInterval: "1h", HealInterval: "0s", KeepBundles: 100, LogLevel: "info",
		Notifications: &notify.Config{Sinks: []notify.SinkConfig{{Name: "audit", Type: notify.TypeWebhook, URL: recv.URL, SecretFile: secretFile}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runAgent: %v", err)
		}
	})
	waitUntil(t, "applied notification", func() bool { return len(heard()) == 1 })
	if e := heard()[0]; string(e.Kind) != notify.Applied || e.Version != first {
		t.Fatalf("first notification %+v, want applied %s", e, first)
	}
	bad := commitConfig(t, repo, "break it", strings.Replace(cfgYAML("9002"), "weight: 100", "weight: lots", 1))
	cli(t, wrap(runSync), "--control-socket", cfg.ControlSocket) // exits 1: the last attempt was rejected
	waitUntil(t, "rejected notification", func() bool { return len(heard()) == 2 })
	if e := heard()[1]; string(e.Kind) != notify.Rejected || e.Version != bad || len(e.Diagnostics) == 0 {
		t.Fatalf("second notification %+v, want rejected %s with diagnostics", e, bad)
	}
}

// TestREADMENotificationsExample: the README's agent.yaml example parses.
func TestREADMENotificationsExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n# agent.yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no agent.yaml example under Notifications")
	}
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c, err := parseRunConfig([]string{"--config", p}, &stderr)
	if err != nil || c.Notifications == nil || len(c.Notifications.Sinks) != 2 {
		t.Fatalf("README example: %v (%+v)", err, c.Notifications)
	}
}
