package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// lockedBuffer is a log sink safe for the handler's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes the JSON log lines written so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// gitHubPayload reads a payload as GitHub's documentation shows it
// (Codertocat/Hello-World, mixed case) and sets its ref when ref is not
// empty.
func gitHubPayload(t *testing.T, file, ref string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if ref == "" {
		return string(b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["ref"] = ref
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestGitHubPayloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		repo       string // Options.Repo, as a user types it
		event      string
		file, ref  string
		wantCode   int
		wantAnswer string
		wantNudges int
		wantQueued bool
		// wantReason is the reason field of the info line an ignored
		// delivery leaves; empty: no ignore line.
		wantReason string
	}{
		{name: "push to the tracked branch, repo in another case", repo: "codertocat/hello-world", event: "push", file: "push.json", ref: "refs/heads/master",
			wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "push, repo spelled as GitHub does", repo: "Codertocat/Hello-World", event: "push", file: "push.json", ref: "refs/heads/master",
			wantCode: 202, wantAnswer: "sync queued", wantNudges: 1},
		{name: "tag push", repo: "Codertocat/Hello-World", event: "push", file: "push.json",
			wantCode: 202, wantAnswer: "tag push ignored", wantReason: "tag"},
		{name: "push to another branch", repo: "Codertocat/Hello-World", event: "push", file: "push.json", ref: "refs/heads/changes",
			wantCode: 202, wantAnswer: "other branch ignored", wantReason: "other_branch"},
		{name: "push from another repository", repo: "acme/config", event: "push", file: "push.json", ref: "refs/heads/master",
			wantCode: 202, wantAnswer: "other repository ignored", wantReason: "other_repo"},
		{name: "pull request, repo in another case", repo: "CODERTOCAT/hello-world", event: "pull_request", file: "pull_request.json",
			wantCode: 202, wantAnswer: "queued", wantQueued: true},
		{name: "pull request from another repository", repo: "acme/config", event: "pull_request", file: "pull_request.json",
			wantCode: 202, wantAnswer: "other repository ignored", wantReason: "other_repo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				n    nudges
				logs lockedBuffer
			)
			sink := prSink{got: make(chan int, 1)}
			h, err := New(Options{Secret: secret, Branch: "master", Repo: tc.repo, Nudge: n.nudge, PullRequests: sink, Logger: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			srv := httptest.NewServer(h)
			defer srv.Close()
			body := gitHubPayload(t, tc.file, tc.ref)
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-GitHub-Event", tc.event)
			req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
			req.Header.Set("X-Hub-Signature-256", Sign(secret, []byte(body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || strings.TrimSpace(string(answer)) != tc.wantAnswer {
				t.Fatalf("answer %d %q, want %d %q", resp.StatusCode, answer, tc.wantCode, tc.wantAnswer)
			}
			if n.count() != tc.wantNudges {
				t.Fatalf("nudges %d, want %d", n.count(), tc.wantNudges)
			}
			if tc.wantQueued {
				if got := <-sink.got; got != 2 {
					t.Fatalf("reporter got PR %d, want 2", got)
				}
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
			wantRef := tc.ref
			if wantRef == "" && tc.event == "push" {
				wantRef = "refs/tags/simple-tag"
			}
			if l["level"] != "info" || l["event"] != tc.event || l["repo"] != "Codertocat/Hello-World" || l["reason"] != tc.wantReason || (tc.event == "push" && l["ref"] != wantRef) {
				t.Fatalf("ignore line %v: want level info, event %s, repo Codertocat/Hello-World, ref %q, reason %s", l, tc.event, wantRef, tc.wantReason)
			}
		})
	}
}
