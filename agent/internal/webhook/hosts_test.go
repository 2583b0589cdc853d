package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// hexHMAC is the HMAC-SHA256 of body under key, in hex.
func hexHMAC(key []byte, body string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// A signer returns the headers that authenticate body for one host: with
// the right secret, with a wrong one, or none.
type signer func(key []byte, body string) map[string]string

var (
	gitLabToken = func(key []byte, _ string) map[string]string { return map[string]string{"X-Gitlab-Token": string(key)} }
	giteaSig    = func(key []byte, body string) map[string]string {
		return map[string]string{"X-Gitea-Signature": hexHMAC(key, body)}
	}
	forgejoSig = func(key []byte, body string) map[string]string {
		return map[string]string{"X-Forgejo-Signature": hexHMAC(key, body)}
	}
	bitbucketSig = func(key []byte, body string) map[string]string {
		return map[string]string{"X-Hub-Signature": "sha256=" + hexHMAC(key, body)}
	}
)

// hostCase is one delivery to one host's route.
type hostCase struct {
	name     string
	path     string            // /webhooks/NAME
	headers  map[string]string // event and delivery headers
	sign     signer
	key      []byte // signing key; nil: the right secret
	unsigned bool
	file     string
	edit     [2]string // replace edit[0] by edit[1] in the body before signing
	body     string    // instead of file
	repo     string    // Options.Repo; empty: "acme/config"
	branch   string    // Options.Branch; empty: "main"

	wantCode   int
	wantAnswer string // prefix of the answer
	wantNudges int
	wantReason string // reason of the "webhook delivery ignored" line
	wantRepo   string // its repo field
	wantRef    string // its ref field
}

func readPayload(t *testing.T, file string, edit [2]string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if edit[0] == "" {
		return string(b)
	}
	if !strings.Contains(string(b), edit[0]) {
		t.Fatalf("%s has no %q to edit", file, edit[0])
	}
	return strings.Replace(string(b), edit[0], edit[1], 1)
}

func TestHostPayloads(t *testing.T) {
	t.Parallel()
	gl := func(event string) map[string]string {
		return map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}
	}
	gitea := func(event string) map[string]string {
		return map[string]string{"X-Gitea-Event": event, "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"}
	}
	forgejo := func(event string) map[string]string {
		return map[string]string{"X-Forgejo-Event": event, "X-Forgejo-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
			"X-Gitea-Event": event, "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"}
	}
	bb := func(event string) map[string]string {
		return map[string]string{"X-Event-Key": event, "X-Request-UUID": "afe4b4e0-1c7b-4a5f-b2c4-4b1e9c3f2a11"}
	}
	const (
		glRepo  = "mike/DIASPORA" // the payload says Mike/diaspora
		gtRepo  = "Gitea/webhooks"
		bbcRepo = "team_name/config"
		bbsRepo = "proj/repository"
	)
	tests := []hostCase{
		// GitLab.
		{name: "gitlab push to the tracked branch, repo in another case", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken,
			file: "gitlab_push.json", repo: glRepo, branch: "master", wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "gitlab wrong token", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken, key: []byte("guess"),
			file: "gitlab_push.json", repo: glRepo, branch: "master", wantCode: 401, wantAnswer: "X-Gitlab-Token does not match"},
		{name: "gitlab token that is the secret plus a byte", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken, key: append(append([]byte{}, secret...), 'x'),
			file: "gitlab_push.json", repo: glRepo, branch: "master", wantCode: 401, wantAnswer: "X-Gitlab-Token does not match"},
		{name: "gitlab no token", path: "/webhooks/gitlab", headers: gl("Push Hook"), unsigned: true,
			file: "gitlab_push.json", repo: glRepo, branch: "master", wantCode: 401, wantAnswer: "delivery is not signed (no X-Gitlab-Token)"},
		{name: "gitlab push to another branch", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken,
			file: "gitlab_push.json", repo: glRepo, branch: "main", wantCode: 202, wantAnswer: "other branch ignored",
			wantReason: "other_branch", wantRepo: "Mike/diaspora", wantRef: "refs/heads/master"},
		{name: "gitlab tag push", path: "/webhooks/gitlab", headers: gl("Tag Push Hook"), sign: gitLabToken,
			file: "gitlab_tag_push.json", repo: glRepo, branch: "master", wantCode: 202, wantAnswer: "tag push ignored",
			wantReason: "tag", wantRepo: "Mike/diaspora", wantRef: "refs/tags/v1.0.0"},
		{name: "gitlab push from another project", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken,
			file: "gitlab_push.json", branch: "master", wantCode: 202, wantAnswer: "other repository ignored",
			wantReason: "other_repo", wantRepo: "Mike/diaspora", wantRef: "refs/heads/master"},
		{name: "gitlab push in a subgroup", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken,
			file: "gitlab_push.json", edit: [2]string{`"Mike/diaspora"`, `"Mike/infra/diaspora"`}, repo: "mike/infra/diaspora", branch: "master",
			wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "gitlab merge request recognized, not reported", path: "/webhooks/gitlab", headers: gl("Merge Request Hook"), sign: gitLabToken,
			file: "gitlab_merge_request.json", repo: glRepo, branch: "master", wantCode: 202, wantAnswer: "merge request ignored",
			wantReason: "pull_request", wantRepo: "Mike/diaspora", wantRef: "refs/heads/master"},
		{name: "gitlab other event", path: "/webhooks/gitlab", headers: gl("Issue Hook"), sign: gitLabToken,
			body: `{"object_kind":"issue"}`, repo: glRepo, wantCode: 202, wantAnswer: "event ignored", wantReason: "other_event"},
		{name: "gitlab payload does not parse", path: "/webhooks/gitlab", headers: gl("Push Hook"), sign: gitLabToken,
			body: `{"object_kind":`, repo: glRepo, wantCode: 400},
		{name: "gitlab delivery sent to the github route", path: "/webhooks/github", headers: gl("Push Hook"), sign: gitLabToken,
			file: "gitlab_push.json", repo: glRepo, branch: "master", wantCode: 401},

		// Gitea.
		{name: "gitea push to the tracked branch, repo in another case", path: "/webhooks/gitea", headers: gitea("push"), sign: giteaSig,
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "gitea wrong secret", path: "/webhooks/gitea", headers: gitea("push"), sign: giteaSig, key: []byte("guess"),
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401, wantAnswer: "X-Gitea-Signature does not match"},
		{name: "gitea no signature", path: "/webhooks/gitea", headers: gitea("push"), unsigned: true,
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401, wantAnswer: "delivery is not signed"},
		{name: "gitea signature with a sha256= prefix", path: "/webhooks/gitea", headers: gitea("push"),
			sign: func(key []byte, body string) map[string]string {
				return map[string]string{"X-Gitea-Signature": "sha256=" + hexHMAC(key, body)}
			},
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401},
		{name: "gitea GitHub-style signature only", path: "/webhooks/gitea", headers: gitea("push"), sign: func(key []byte, body string) map[string]string {
			return map[string]string{"X-Hub-Signature-256": "sha256=" + hexHMAC(key, body)}
		}, file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401, wantAnswer: "delivery is not signed"},
		{name: "gitea push to another branch", path: "/webhooks/gitea", headers: gitea("push"), sign: giteaSig,
			file: "gitea_push.json", repo: gtRepo, wantCode: 202, wantAnswer: "other branch ignored",
			wantReason: "other_branch", wantRepo: "gitea/Webhooks", wantRef: "refs/heads/develop"},
		{name: "gitea tag push", path: "/webhooks/gitea", headers: gitea("push"), sign: giteaSig,
			file: "gitea_push.json", edit: [2]string{"refs/heads/develop", "refs/tags/v2"}, repo: gtRepo, branch: "develop",
			wantCode: 202, wantAnswer: "tag push ignored", wantReason: "tag", wantRepo: "gitea/Webhooks", wantRef: "refs/tags/v2"},
		{name: "gitea push from another repository", path: "/webhooks/gitea", headers: gitea("push"), sign: giteaSig,
			file: "gitea_push.json", branch: "develop", wantCode: 202, wantAnswer: "other repository ignored",
			wantReason: "other_repo", wantRepo: "gitea/Webhooks", wantRef: "refs/heads/develop"},
		{name: "gitea pull request recognized, not reported", path: "/webhooks/gitea", headers: gitea("pull_request"), sign: giteaSig,
			file: "gitea_pull_request.json", repo: gtRepo, branch: "develop", wantCode: 202, wantAnswer: "pull request ignored",
			wantReason: "pull_request", wantRepo: "gitea/Webhooks", wantRef: "refs/heads/develop"},
		{name: "gitea create event", path: "/webhooks/gitea", headers: gitea("create"), sign: giteaSig,
			body: `{"ref":"v2","ref_type":"tag"}`, repo: gtRepo, wantCode: 202, wantAnswer: "event ignored", wantReason: "other_event"},

		// Forgejo, on the same route.
		{name: "forgejo push to the tracked branch", path: "/webhooks/gitea", headers: forgejo("push"), sign: forgejoSig,
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "forgejo wrong secret", path: "/webhooks/gitea", headers: forgejo("push"), sign: forgejoSig, key: []byte("guess"),
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401, wantAnswer: "X-Forgejo-Signature does not match"},
		{name: "forgejo no signature", path: "/webhooks/gitea", headers: forgejo("push"), unsigned: true,
			file: "gitea_push.json", repo: gtRepo, branch: "develop", wantCode: 401, wantAnswer: "delivery is not signed"},

		// Bitbucket Cloud.
		{name: "bitbucket cloud push to the tracked branch, repo in another case", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig,
			file: "bitbucket_cloud_push.json", repo: bbcRepo, wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "bitbucket cloud wrong secret", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig, key: []byte("guess"),
			file: "bitbucket_cloud_push.json", repo: bbcRepo, wantCode: 401, wantAnswer: "X-Hub-Signature does not match"},
		{name: "bitbucket cloud unsigned (no secret set on the webhook)", path: "/webhooks/bitbucket", headers: bb("repo:push"), unsigned: true,
			file: "bitbucket_cloud_push.json", repo: bbcRepo, wantCode: 401, wantAnswer: "delivery is not signed (no X-Hub-Signature)"},
		{name: "bitbucket sha1 signature", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: func(_ []byte, _ string) map[string]string {
			return map[string]string{"X-Hub-Signature": "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"}
		}, file: "bitbucket_cloud_push.json", repo: bbcRepo, wantCode: 401, wantAnswer: "X-Hub-Signature does not match"},
		{name: "bitbucket cloud push to another branch", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig,
			file: "bitbucket_cloud_push.json", repo: bbcRepo, branch: "prod", wantCode: 202, wantAnswer: "other branch ignored",
			wantReason: "other_branch", wantRepo: "Team_Name/Config", wantRef: "refs/heads/main"},
		{name: "bitbucket cloud tag push", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig,
			file: "bitbucket_cloud_push.json", edit: [2]string{`"new": {"type": "branch", "name": "main"`, `"new": {"type": "tag", "name": "v1.2"`}, repo: bbcRepo,
			wantCode: 202, wantAnswer: "tag push ignored", wantReason: "tag", wantRepo: "Team_Name/Config", wantRef: "refs/tags/v1.2"},
		{name: "bitbucket cloud tracked branch deleted", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig,
			file: "bitbucket_cloud_push.json", edit: [2]string{`"new": {"type": "branch", "name": "main", "target": {"type": "commit", "hash": "709d658dc5b6d6afcd46049c2f332ee3f515a67d"}},`, `"new": null,`},
			repo: bbcRepo, wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "bitbucket cloud push from another repository", path: "/webhooks/bitbucket", headers: bb("repo:push"), sign: bitbucketSig,
			file: "bitbucket_cloud_push.json", wantCode: 202, wantAnswer: "other repository ignored",
			wantReason: "other_repo", wantRepo: "Team_Name/Config", wantRef: "refs/heads/main"},
		{name: "bitbucket cloud pull request recognized, not reported", path: "/webhooks/bitbucket", headers: bb("pullrequest:created"), sign: bitbucketSig,
			file: "bitbucket_cloud_pullrequest.json", repo: bbcRepo, wantCode: 202, wantAnswer: "pull request ignored",
			wantReason: "pull_request", wantRepo: "Team_Name/Config", wantRef: "refs/heads/main"},
		{name: "bitbucket cloud other event", path: "/webhooks/bitbucket", headers: bb("repo:fork"), sign: bitbucketSig,
			body: `{}`, repo: bbcRepo, wantCode: 202, wantAnswer: "event ignored", wantReason: "other_event"},

		// Bitbucket Server / Data Center.
		{name: "bitbucket server push to the tracked branch, project key in another case", path: "/webhooks/bitbucket", headers: bb("repo:refs_changed"), sign: bitbucketSig,
			file: "bitbucket_server_refs_changed.json", repo: bbsRepo, branch: "master", wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "bitbucket server wrong secret", path: "/webhooks/bitbucket", headers: bb("repo:refs_changed"), sign: bitbucketSig, key: []byte("guess"),
			file: "bitbucket_server_refs_changed.json", repo: bbsRepo, branch: "master", wantCode: 401},
		{name: "bitbucket server unsigned", path: "/webhooks/bitbucket", headers: bb("repo:refs_changed"), unsigned: true,
			file: "bitbucket_server_refs_changed.json", repo: bbsRepo, branch: "master", wantCode: 401, wantAnswer: "delivery is not signed"},
		{name: "bitbucket server push to another branch", path: "/webhooks/bitbucket", headers: bb("repo:refs_changed"), sign: bitbucketSig,
			file: "bitbucket_server_refs_changed.json", repo: bbsRepo, wantCode: 202, wantAnswer: "other branch ignored",
			wantReason: "other_branch", wantRepo: "PROJ/repository", wantRef: "refs/heads/master"},
		{name: "bitbucket server tag push", path: "/webhooks/bitbucket", headers: bb("repo:refs_changed"), sign: bitbucketSig,
			file: "bitbucket_server_refs_changed.json", edit: [2]string{`"ref": {"id": "refs/heads/master", "displayId": "master", "type": "BRANCH"},
      "refId": "refs/heads/master"`, `"ref": {"id": "refs/tags/v3", "displayId": "v3", "type": "TAG"},
      "refId": "refs/tags/v3"`}, repo: bbsRepo, branch: "master",
			wantCode: 202, wantAnswer: "tag push ignored", wantReason: "tag", wantRepo: "PROJ/repository", wantRef: "refs/tags/v3"},
		{name: "bitbucket server pull request recognized, not reported", path: "/webhooks/bitbucket", headers: bb("pr:opened"), sign: bitbucketSig,
			file: "bitbucket_server_pr_opened.json", repo: bbsRepo, branch: "master", wantCode: 202, wantAnswer: "pull request ignored",
			wantReason: "pull_request", wantRepo: "PROJ/repository", wantRef: "refs/heads/master"},
		{name: "bitbucket server test connection", path: "/webhooks/bitbucket", headers: bb("diagnostics:ping"), sign: bitbucketSig,
			body: `{"test": true}`, repo: bbsRepo, wantCode: 200, wantAnswer: "pong"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				n    nudges
				logs lockedBuffer
			)
			repo, branch := tc.repo, tc.branch
			if repo == "" {
				repo = "acme/config"
			}
			if branch == "" {
				branch = "main"
			}
			h, err := New(Options{Secret: secret, Branch: branch, Repo: repo, Nudge: n.nudge, Logger: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			mux := http.NewServeMux()
			h.Register(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()

			body := tc.body
			if tc.file != "" {
				body = readPayload(t, tc.file, tc.edit)
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if !tc.unsigned {
				key := tc.key
				if key == nil {
					key = secret
				}
				for k, v := range tc.sign(key, body) {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.HasPrefix(string(answer), tc.wantAnswer) {
				t.Fatalf("answer %d %q, want %d %q...", resp.StatusCode, answer, tc.wantCode, tc.wantAnswer)
			}
			if n.count() != tc.wantNudges {
				t.Fatalf("nudges %d, want %d", n.count(), tc.wantNudges)
			}
			var ignored []map[string]any
			for _, l := range logs.lines(t) {
				if l["message"] == "webhook delivery ignored" {
					ignored = append(ignored, l)
				}
			}
			if tc.wantReason == "" {
				if len(ignored) != 0 {
					t.Fatalf("unexpected ignore lines: %v", ignored)
				}
				return
			}
			if len(ignored) != 1 {
				t.Fatalf("want one \"webhook delivery ignored\" line, got %v", logs.lines(t))
			}
			l := ignored[0]
			host := strings.TrimPrefix(tc.path, "/webhooks/")
			event := tc.headers["X-Gitlab-Event"] + tc.headers["X-Gitea-Event"] + tc.headers["X-Event-Key"]
			if l["level"] != "info" || l["host"] != host || l["event"] != event || l["reason"] != tc.wantReason ||
				(tc.wantRepo != "" && l["repo"] != tc.wantRepo) || (tc.wantRef != "" && l["ref"] != tc.wantRef) {
				t.Fatalf("ignore line %v: want level info, host %s, event %s, repo %q, ref %q, reason %s", l, host, event, tc.wantRepo, tc.wantRef, tc.wantReason)
			}
		})
	}
}
