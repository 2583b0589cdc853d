package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

type nudges struct {
	mu sync.Mutex
	n  int
}

func (c *nudges) nudge(string) { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *nudges) count() int   { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

type prSink struct{ got chan int }

func (p prSink) HandlePullRequest(_ context.Context, ev *github.PullRequestEvent) {
	p.got <- ev.GetNumber()
}

var secret = []byte("It's a Secret to Everybody")

func post(t *testing.T, url, event, delivery, body string, sign func(string) (string, string)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		h, v := sign(body)
		req.Header.Set(h, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func good(body string) (string, string) { return "X-Hub-Signature-256", Sign(secret, []byte(body)) }

func TestHandler(t *testing.T) {
	t.Parallel()
	const push = `{"ref":"refs/heads/main","after":"deadbeef","repository":{"full_name":"acme/config"}}`
	tests := []struct {
		name       string
		method     string
		event      string
		body       string
		sign       func(string) (string, string)
		wantCode   int
		wantNudges int
	}{
		{name: "push to tracked branch nudges", event: "push", body: push, sign: good, wantCode: 202, wantNudges: 1},
		{name: "push to another branch ignored", event: "push", body: `{"ref":"refs/heads/dev","repository":{"full_name":"acme/config"}}`, sign: good, wantCode: 202},
		{name: "push from another repo ignored", event: "push", body: `{"ref":"refs/heads/main","repository":{"full_name":"evil/config"}}`, sign: good, wantCode: 202},
		{name: "ping", event: "ping", body: `{"zen":"hi"}`, sign: good, wantCode: 200},
		{name: "unsigned refused", event: "push", body: push, wantCode: 401},
		{name: "sha1 only refused", event: "push", body: push, sign: func(string) (string, string) { return "X-Hub-Signature", "sha1=0123" }, wantCode: 403},
		{name: "tampered body refused", event: "push", body: push, sign: func(b string) (string, string) {
			return "X-Hub-Signature-256", Sign(secret, []byte(strings.Replace(b, "main", "dev", 1)))
		}, wantCode: 401},
		{name: "wrong secret refused", event: "push", body: push, sign: func(b string) (string, string) {
			return "X-Hub-Signature-256", Sign([]byte("guess"), []byte(b))
		}, wantCode: 401},
		{name: "malformed signature refused", event: "push", body: push, sign: func(string) (string, string) { return "X-Hub-Signature-256", "sha256=zz" }, wantCode: 401},
		{name: "GET refused", method: http.MethodGet, event: "push", wantCode: 405},
		{name: "too large", event: "push", body: strings.Repeat("x", 2048), sign: good, wantCode: 413},
		{name: "bad json", event: "push", body: `{"ref":`, sign: good, wantCode: 400},
		{name: "other event ignored", event: "issues", body: `{}`, sign: good, wantCode: 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n nudges
			h, err := New(Options{Secret: secret, Branch: "main", Repo: "acme/config", Nudge: n.nudge, MaxBodyBytes: 1024, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			srv := httptest.NewServer(h)
			defer srv.Close()
			var resp *http.Response
			if tc.method == http.MethodGet {
				r, err := http.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				resp = r
			} else {
				resp = post(t, srv.URL, tc.event, "d-1", tc.body, tc.sign)
			}
			if resp.StatusCode != tc.wantCode || n.count() != tc.wantNudges {
				t.Fatalf("status %d nudges %d, want %d %d", resp.StatusCode, n.count(), tc.wantCode, tc.wantNudges)
			}
		})
	}
}

func TestReplayDropped(t *testing.T) {
	t.Parallel()
	var n nudges
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: n.nudge, DedupeSize: 2, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `{"ref":"refs/heads/main"}`
	steps := []struct {
		delivery string
		code     int
		nudges   int
	}{
		{"a", 202, 1},
		{"a", 200, 1}, // replay
		{"b", 202, 2},
		{"c", 202, 3},
		{"a", 202, 4}, // evicted from the bounded memory, accepted again
	}
	for i, st := range steps {
		resp := post(t, srv.URL, "push", st.delivery, body, good)
		if resp.StatusCode != st.code || n.count() != st.nudges {
			t.Fatalf("step %d (%s): status %d nudges %d, want %d %d", i, st.delivery, resp.StatusCode, n.count(), st.code, st.nudges)
		}
	}
}

func TestPullRequestHandedToReporter(t *testing.T) {
	t.Parallel()
	sink := prSink{got: make(chan int, 1)}
	var n nudges
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: n.nudge, PullRequests: sink, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp := post(t, srv.URL, "pull_request", "pr-1", `{"action":"opened","number":42,"pull_request":{"number":42}}`, good)
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := <-sink.got; got != 42 || n.count() != 0 {
		t.Fatalf("reporter got PR %d, nudges %d", got, n.count())
	}
}

func TestNewRequiresSecret(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Nudge: func(string) {}}); err == nil {
		t.Fatal("New without a secret succeeded")
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	tests := []struct {
		name, sig256, sha1 string
		want               error
	}{
		{"valid", Sign(secret, body), "", nil},
		{"unsigned", "", "", ErrUnsigned},
		{"sha1 only", "", "sha1=abc", ErrSHA1Only},
		{"no prefix", strings.TrimPrefix(Sign(secret, body), "sha256="), "", ErrBadSignature},
		{"truncated", Sign(secret, body)[:40], "", ErrBadSignature},
		{"other body", Sign(secret, []byte(`{"a":2}`)), "", ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := Verify(secret, body, tc.sig256, tc.sha1); err != tc.want {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), "sha256=00", byte(0))
	f.Add([]byte{}, Sign(secret, nil), byte(1))
	f.Fuzz(func(t *testing.T, body []byte, sig string, flip byte) {
		// A correct signature verifies; any single-bit change of it does not;
		// arbitrary input never panics.
		_ = Verify(secret, body, sig, "")
		good := Sign(secret, body)
		if err := Verify(secret, body, good, ""); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		b := []byte(good)
		i := 7 + int(flip)%(len(b)-7)
		b[i] ^= 1
		if Verify(secret, body, string(b), "") == nil {
			t.Fatalf("altered signature %q accepted", b)
		}
	})
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/s"
	if err := writeFile(p, "topsecret\n"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SecretEnv, "fromenv")
	tests := []struct{ name, file, want string }{
		{"file wins and is trimmed", p, "topsecret"},
		{"env when no file", "", "fromenv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadSecret(tc.file)
			if err != nil || string(got) != tc.want {
				t.Fatalf("LoadSecret = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
