package webhook

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// fuzzParser checks what any body and event name can make a host's parser
// do: never panic; yield a push or pull request only for an event the host
// reads; yield no repo or refs for an event it ignores; hand a pull request
// to the reporter only from GitHub.
func fuzzParser(f *testing.F, hst host, seeds map[string]string) {
	for event, file := range seeds {
		b, err := os.ReadFile("testdata/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(event, b)
	}
	f.Add("push", []byte(`{"ref":null,"repository":[]}`))
	f.Add("unknown", []byte(`{}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		d, err := hst.parse(event, body)
		if err != nil {
			return
		}
		if d.kind != kindOther && d.kind != kindPing && !slices.Contains(hst.events(), event) {
			t.Fatalf("event %q the host does not read gave kind %d", event, d.kind)
		}
		if d.kind == kindOther && (d.repo != "" || len(d.refs) != 0) {
			t.Fatalf("an ignored event carries repo %q refs %q", d.repo, d.refs)
		}
		if d.pullRequest != nil && hst.name() != "github" {
			t.Fatalf("%s gave a GitHub pull request", hst.name())
		}
	})
}

func FuzzGitHubParse(f *testing.F) {
	fuzzParser(f, gitHub{}, map[string]string{"push": "push.json", "pull_request": "pull_request.json"})
}

func FuzzGitLabParse(f *testing.F) {
	fuzzParser(f, gitLab{}, map[string]string{"Push Hook": "gitlab_push.json", "Tag Push Hook": "gitlab_tag_push.json", "Merge Request Hook": "gitlab_merge_request.json"})
}

func FuzzGiteaParse(f *testing.F) {
	fuzzParser(f, gitea{}, map[string]string{"push": "gitea_push.json", "pull_request": "gitea_pull_request.json"})
}

func FuzzBitbucketParse(f *testing.F) {
	fuzzParser(f, bitbucket{}, map[string]string{
		"repo:push": "bitbucket_cloud_push.json", "pullrequest:created": "bitbucket_cloud_pullrequest.json",
		"repo:refs_changed": "bitbucket_server_refs_changed.json", "pr:opened": "bitbucket_server_pr_opened.json",
	})
}

// TestReplayPerHost: a delivery ID seen twice on one host's route is a
// replay; the same ID on another host's route is another delivery.
func TestReplayPerHost(t *testing.T) {
	t.Parallel()
	var n nudges
	h, err := New(Options{Secret: secret, Branch: "master", Nudge: n.nudge, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	const id = "13792a34-cac6-4fda-95a8-c58e00a3954e"
	gl := readPayload(t, "gitlab_push.json", [2]string{})
	gt := readPayload(t, "gitea_push.json", [2]string{"refs/heads/develop", "refs/heads/master"})
	steps := []struct {
		name, path, body string
		headers          map[string]string
		code, nudges     int
	}{
		{"gitlab first", "/webhooks/gitlab", gl, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": id, "X-Gitlab-Token": string(secret)}, 202, 1},
		{"gitlab replay", "/webhooks/gitlab", gl, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": id, "X-Gitlab-Token": string(secret)}, 200, 1},
		{"gitea, same id", "/webhooks/gitea", gt, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": id, "X-Gitea-Signature": hexHMAC(secret, gt)}, 202, 2},
	}
	for _, st := range steps {
		req, err := http.NewRequest(http.MethodPost, srv.URL+st.path, strings.NewReader(st.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range st.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != st.code || n.count() != st.nudges {
			t.Fatalf("%s: status %d nudges %d, want %d %d", st.name, resp.StatusCode, n.count(), st.code, st.nudges)
		}
	}
}
