package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "x-webhook-hosts",
		criterion: "with polling off (1h), a commit is served after a push webhook from each other host: GitLab " +
			"(X-Gitlab-Token), Forgejo (X-Forgejo-Signature), Bitbucket Cloud and Server (X-Hub-Signature sha256=); " +
			"a GitLab delivery with a wrong token is refused 401 and a Gitea tag push answered 202 without a " +
			"sync: the previous config keeps serving",
		run: webhookHosts,
	})
}

// hostPush is one host's signed push delivery for refs/heads/main.
type hostPush struct {
	name, path, body string
	headers          func(body []byte) map[string]string
}

func hexMAC(body []byte) string {
	m := hmac.New(sha256.New, []byte(harness.WebhookSecret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

var hostPushes = []hostPush{
	{"gitlab", "/webhooks/gitlab", `{"object_kind":"push","ref":"refs/heads/main","project":{"path_with_namespace":"e2e/config"}}`,
		func([]byte) map[string]string {
			return map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": harness.WebhookSecret}
		}},
	{"forgejo", "/webhooks/gitea", `{"ref":"refs/heads/main","repository":{"full_name":"e2e/config"}}`,
		func(b []byte) map[string]string {
			return map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Signature": hexMAC(b)}
		}},
	{"bitbucket-cloud", "/webhooks/bitbucket", `{"repository":{"full_name":"e2e/config"},"push":{"changes":[{"new":{"type":"branch","name":"main"}}]}}`,
		func(b []byte) map[string]string {
			return map[string]string{"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + hexMAC(b)}
		}},
	{"bitbucket-server", "/webhooks/bitbucket", `{"repository":{"slug":"config","project":{"key":"E2E"}},"changes":[{"ref":{"id":"refs/heads/main"}}]}`,
		func(b []byte) map[string]string {
			return map[string]string{"X-Event-Key": "repo:refs_changed", "X-Hub-Signature": "sha256=" + hexMAC(b)}
		}},
}

// sendHostPush posts p's delivery with headers and returns the status.
func sendHostPush(ctx context.Context, st *harness.Stack, p hostPush, headers map[string]string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.HookAddr+p.path, bytes.NewReader([]byte(p.body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sending the %s webhook: %w", p.name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func webhookHosts(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	served := "c1"
	for i, p := range hostPushes {
		label := fmt.Sprintf("c%d", i+2)
		sha, err := t.commit(st, label)
		if err != nil {
			return err
		}
		if i == 0 {
			// A wrong token first: refused, nothing synced.
			code, err := sendHostPush(ctx, st, p, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"})
			if err != nil {
				return err
			}
			if code != http.StatusUnauthorized {
				return fmt.Errorf("gitlab push with a wrong token: %d, want 401", code)
			}
			tag := hostPush{"gitea-tag", "/webhooks/gitea", `{"ref":"refs/tags/v1","repository":{"full_name":"e2e/config"}}`, nil}
			code, err = sendHostPush(ctx, st, tag, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": hexMAC([]byte(tag.body))})
			if err != nil {
				return err
			}
			if code != http.StatusAccepted {
				return fmt.Errorf("gitea tag push: %d, want 202", code)
			}
			if err := expectServing(st, served, 20); err != nil {
				return fmt.Errorf("after a refused and an ignored delivery: %w", err)
			}
			t.Logf("gitlab wrong token: 401; gitea tag push: 202; 20/20 requests still served by %s", served)
		}
		code, err := sendHostPush(ctx, st, p, p.headers([]byte(p.body)))
		if err != nil {
			return err
		}
		if code != http.StatusAccepted {
			return fmt.Errorf("%s push: %d, want 202", p.name, code)
		}
		if err := t.waitServed(ctx, st, sha, label); err != nil {
			return fmt.Errorf("after the %s push: %w", p.name, err)
		}
		t.Logf("%s push: 202, %s served", p.name, label)
		served = label
	}
	return nil
}
