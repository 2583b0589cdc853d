package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "y-notifications",
		criterion: "an agent with four sinks in agent.yaml (a signed JSON webhook, a Slack receiver, a Slack URL nobody " +
			"listens on, a receiver that never answers): the webhook receiver verifies the HMAC of applied c1, rejected " +
			"typo (with its diagnostics), applied c2 and the rollback; Slack gets the same four as {text, blocks}; c2 is " +
			"served while the hanging receiver holds a request; the dead sink is counted failed in " +
			"gitgate_agent_notifications_total; the Slack URLs' secret paths never appear in the agent's log",
		run: notifications,
	})
}

// sinkRecorder is a receiver the agent posts notifications to.
type sinkRecorder struct {
	mu     sync.Mutex
	events []string
	bad    []string
}

func (r *sinkRecorder) add(ev, bad string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if bad != "" {
		r.bad = append(r.bad, bad)
		return
	}
	r.events = append(r.events, ev)
}

func (r *sinkRecorder) seen() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), append([]string(nil), r.bad...)
}

func notifications(ctx context.Context, t *T) error {
	const secret = "e2e-notify-secret"
	hook, slack := &sinkRecorder{}, &sinkRecorder{}
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Gitgate-Timestamp")
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		if !hmac.Equal([]byte(r.Header.Get("X-Gitgate-Signature-256")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			hook.add("", "bad signature")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct {
			Event       string            `json:"event"`
			Version     string            `json:"version"`
			Diagnostics []json.RawMessage `json:"diagnostics"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			hook.add("", err.Error())
			return
		}
		hook.add(fmt.Sprintf("%s %s %d", p.Event, short(p.Version), len(p.Diagnostics)), "")
	}))
	t.Cleanup(hookSrv.Close)
	slackSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text == "" || len(m.Blocks) == 0 || r.URL.Path != "/services/T1/B1/slackSecretPathOne" {
			slack.add("", fmt.Sprintf("path %s text %q blocks %d err %v", r.URL.Path, m.Text, len(m.Blocks), err))
			return
		}
		slack.add(m.Text, "")
	}))
	t.Cleanup(slackSrv.Close)
	hold := make(chan struct{})
	held := make(chan struct{}, 100)
	hangSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hangSrv.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(hold) }) }) // runs before hangSrv.Close
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dead := ln.Addr().String()
	ln.Close()

	write := func(name, content string) (string, error) {
		p := filepath.Join(t.dir, name)
		return p, os.WriteFile(p, []byte(content+"\n"), 0o600)
	}
	secretFile, err := write("notify-secret", secret)
	if err != nil {
		return err
	}
	slackURL, err := write("slack-url", slackSrv.URL+"/services/T1/B1/slackSecretPathOne")
	if err != nil {
		return err
	}
	deadURL, err := write("dead-url", "http://"+dead+"/services/T2/B2/slackSecretPathTwo")
	if err != nil {
		return err
	}
	agentYAML, err := write("agent.yaml", fmt.Sprintf(`notifications:
  maxAttempts: 2
  timeout: 5m
  sinks:
    - {name: audit, type: webhook, url: %q, secretFile: %q}
    - {name: ops, type: slack, urlFile: %q, events: [applied, rejected, rollback]}
    - {name: dead, type: slack, urlFile: %q}
    - {name: hang, type: webhook, url: %q, secretFile: %q}`, hookSrv.URL, secretFile, slackURL, deadURL, hangSrv.URL, secretFile))
	if err != nil {
		return err
	}

	st, c1, err := t.Stack(ctx, harness.Options{AgentExtraArgs: []string{"--config", agentYAML}})
	if err != nil {
		return err
	}
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		return fmt.Errorf("the hanging receiver never got c1's notification")
	}
	bad, err := st.Repo.WriteCommit("config.yaml", harness.InvalidYAML(t.upstream), "typo")
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := harness.WaitFor(ctx, 20*time.Second, "typo rejected", func() (bool, error) {
		s, err := st.AgentStatus(ctx)
		return err == nil && s.LastAttempted == bad, nil
	}); err != nil {
		return err
	}
	// The hanging receiver still holds c1's notification: c2 is served anyway.
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	if _, err := st.CLI(ctx, "rollback", "--reason", "e2e"); err != nil {
		return err
	}
	want := []string{"applied " + short(c1) + " 0", "rejected " + short(bad) + " 1", "applied " + short(c2) + " 0", "rollback " + short(c1) + " 0"}
	if err := harness.WaitFor(ctx, 20*time.Second, "four signed notifications and four Slack messages", func() (bool, error) {
		h, hb := hook.seen()
		s, sb := slack.seen()
		if len(hb)+len(sb) > 0 {
			return false, fmt.Errorf("receivers refused deliveries: webhook %v, Slack %v", hb, sb)
		}
		return len(h) >= len(want) && len(s) >= len(want), nil
	}); err != nil {
		return err
	}
	h, _ := hook.seen()
	s, _ := slack.seen()
	if strings.Join(h, ",") != strings.Join(want, ",") || len(s) != len(want) {
		return fmt.Errorf("webhook heard %v, want %v; Slack heard %v", h, want, s)
	}
	if !strings.Contains(s[1], "rejected "+short(bad)) || !strings.Contains(s[3], "rolled back from "+short(c2)+" to "+short(c1)) {
		return fmt.Errorf("slack texts %q", s)
	}
	t.Logf("webhook (HMAC verified): %v", h)
	t.Logf("slack: %q", s[3])
	if err := harness.WaitFor(ctx, 30*time.Second, "the dead sink counted failed", func() (bool, error) {
		_, body, err := st.HookGet(ctx, "/metrics")
		return err == nil && strings.Contains(body, `gitgate_agent_notifications_total{result="failed",sink="dead"} 4`), nil
	}); err != nil {
		return err
	}
	log, err := os.ReadFile(st.Agent.Log)
	if err != nil {
		return err
	}
	for _, secretPath := range []string{"slackSecretPathOne", "slackSecretPathTwo", secret} {
		if strings.Contains(string(log), secretPath) {
			return fmt.Errorf("the agent's log shows %q", secretPath)
		}
	}
	t.Logf("dead sink: 4 notifications failed after 2 attempts each; no secret in the agent's log")
	return nil
}
