package ghreport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// recorded is one request the fake GitHub received.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Body   map[string]any
}

func (r recorded) String() string { return r.Method + " " + r.Path }

// fakeComment is an issue comment held by the fake.
type fakeComment struct {
	ID   int64
	Body string
}

// fakeGitHub answers the REST endpoints ghreport uses with GitHub's JSON
// shapes and records every request. intercept, when set, may answer a
// request first (returning true) to inject errors.
type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	reqs      []recorded
	comments  map[int][]fakeComment // PR number -> comments
	nextID    int64
	pageSize  int
	intercept func(w http.ResponseWriter, r *http.Request, rec recorded) bool
}

const (
	owner   = "acme"
	repo    = "gateway-config"
	shaA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	shaBase = "cccccccccccccccccccccccccccccccccccccccc"
)

func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, comments: map[int][]fakeComment{}, nextID: 1000, pageSize: 2}
	mux := http.NewServeMux()
	prefix := "/repos/" + owner + "/" + repo
	mux.HandleFunc("POST "+prefix+"/statuses/{sha}", f.status)
	mux.HandleFunc("POST "+prefix+"/check-runs", f.checkRun)
	mux.HandleFunc("PATCH "+prefix+"/check-runs/{id}", f.checkRun)
	mux.HandleFunc("GET "+prefix+"/issues/{n}/comments", f.listComments)
	mux.HandleFunc("POST "+prefix+"/issues/{n}/comments", f.createComment)
	mux.HandleFunc("PATCH "+prefix+"/issues/comments/{id}", f.editComment)
	mux.HandleFunc("POST "+prefix+"/deployments", f.deployment)
	mux.HandleFunc("POST "+prefix+"/deployments/{id}/statuses", f.deploymentStatus)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
		if r.Body != nil {
			_ = json.NewDecoder(r.Body).Decode(&rec.Body)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		intercept := f.intercept
		f.mu.Unlock()
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		if intercept != nil && intercept(w, r, rec) {
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), recKey{}, rec))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type recKey struct{}

func bodyOf(r *http.Request) map[string]any {
	rec, _ := r.Context().Value(recKey{}).(recorded)
	return rec.Body
}

func (f *fakeGitHub) client() *github.Client {
	c := github.NewClient(f.srv.Client())
	c.BaseURL, _ = url.Parse(f.srv.URL + "/")
	return c
}

// requests returns the recorded requests, optionally only those whose
// "METHOD path" starts with prefix.
func (f *fakeGitHub) requests(prefix string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.reqs {
		if strings.HasPrefix(r.String(), prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeGitHub) reset() {
	f.mu.Lock()
	f.reqs = nil
	f.mu.Unlock()
}

func (f *fakeGitHub) setIntercept(fn func(w http.ResponseWriter, r *http.Request, rec recorded) bool) {
	f.mu.Lock()
	f.intercept = fn
	f.mu.Unlock()
}

func (f *fakeGitHub) commentsOf(pr int) []fakeComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeComment(nil), f.comments[pr]...)
}

func (f *fakeGitHub) addComment(pr int, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments[pr] = append(f.comments[pr], fakeComment{ID: f.nextID, Body: body})
	return f.nextID
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGitHub) status(w http.ResponseWriter, r *http.Request) {
	b := bodyOf(r)
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"url":         f.srv.URL + "/repos/" + owner + "/" + repo + "/statuses/" + r.PathValue("sha"),
		"id":          id,
		"node_id":     "SC_kwDOA",
		"state":       b["state"],
		"description": b["description"],
		"target_url":  b["target_url"],
		"context":     b["context"],
		"created_at":  "2026-11-25T10:00:00Z",
		"updated_at":  "2026-11-25T10:00:00Z",
		"creator":     map[string]any{"login": "gitgate-bot", "id": 1, "type": "Bot"},
	})
}

func (f *fakeGitHub) checkRun(w http.ResponseWriter, r *http.Request) {
	b := bodyOf(r)
	id := int64(1)
	code := http.StatusCreated
	if s := r.PathValue("id"); s != "" {
		id, _ = strconv.ParseInt(s, 10, 64)
		code = http.StatusOK
	} else {
		f.mu.Lock()
		f.nextID++
		id = f.nextID
		f.mu.Unlock()
	}
	writeJSON(w, code, map[string]any{
		"id":          id,
		"head_sha":    b["head_sha"],
		"node_id":     "CR_kwDOA",
		"external_id": "",
		"url":         fmt.Sprintf("%s/repos/%s/%s/check-runs/%d", f.srv.URL, owner, repo, id),
		"status":      b["status"],
		"conclusion":  b["conclusion"],
		"started_at":  "2026-11-25T10:00:00Z",
		"name":        b["name"],
		"output":      map[string]any{"title": nil, "summary": nil, "annotations_count": 0},
		"app":         map[string]any{"id": 1, "slug": "gitgate"},
	})
}

func (f *fakeGitHub) commentJSON(pr int, c fakeComment) map[string]any {
	return map[string]any{
		"id":         c.ID,
		"node_id":    "IC_kwDOA",
		"url":        fmt.Sprintf("%s/repos/%s/%s/issues/comments/%d", f.srv.URL, owner, repo, c.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/pull/%d#issuecomment-%d", owner, repo, pr, c.ID),
		"body":       c.Body,
		"user":       map[string]any{"login": "gitgate-bot", "id": 1, "type": "Bot"},
		"created_at": "2026-11-25T10:00:00Z",
		"updated_at": "2026-11-25T10:00:00Z",
	}
}

// listComments pages by f.pageSize whatever per_page asks, with the Link
// header GitHub sends, so pagination is always exercised.
func (f *fakeGitHub) listComments(w http.ResponseWriter, r *http.Request) {
	pr, _ := strconv.Atoi(r.PathValue("n"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	all := f.commentsOf(pr)
	from := min((page-1)*f.pageSize, len(all))
	to := min(from+f.pageSize, len(all))
	last := max((len(all)+f.pageSize-1)/f.pageSize, 1)
	if page < last {
		u := func(p int) string {
			return fmt.Sprintf("<%s%s?page=%d&per_page=100>", f.srv.URL, r.URL.Path, p)
		}
		w.Header().Set("Link", u(page+1)+`; rel="next", `+u(last)+`; rel="last"`)
	}
	out := []map[string]any{}
	for _, c := range all[from:to] {
		out = append(out, f.commentJSON(pr, c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeGitHub) createComment(w http.ResponseWriter, r *http.Request) {
	pr, _ := strconv.Atoi(r.PathValue("n"))
	body, _ := bodyOf(r)["body"].(string)
	id := f.addComment(pr, body)
	writeJSON(w, http.StatusCreated, f.commentJSON(pr, fakeComment{ID: id, Body: body}))
}

func (f *fakeGitHub) editComment(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	body, _ := bodyOf(r)["body"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	for pr, cs := range f.comments {
		for i := range cs {
			if cs[i].ID == id {
				cs[i].Body = body
				writeJSON(w, http.StatusOK, f.commentJSON(pr, cs[i]))
				return
			}
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/comments#update-an-issue-comment"})
}

func (f *fakeGitHub) deployment(w http.ResponseWriter, r *http.Request) {
	b := bodyOf(r)
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "sha": b["ref"], "ref": b["ref"], "task": b["task"], "environment": b["environment"],
		"description": b["description"], "created_at": "2026-11-25T10:00:00Z",
	})
}

func (f *fakeGitHub) deploymentStatus(w http.ResponseWriter, r *http.Request) {
	b := bodyOf(r)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": 1, "state": b["state"], "description": b["description"], "environment": b["environment"],
		"created_at": "2026-11-25T10:00:00Z",
	})
}

// forbidden answers like GitHub does to a token that may not write.
func forbidden(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusForbidden, map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest/checks/runs#create-a-check-run",
	})
}

// rateLimited answers like GitHub's primary rate limit.
func rateLimited(w http.ResponseWriter, reset time.Time) {
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	writeJSON(w, http.StatusForbidden, map[string]any{
		"message":           "API rate limit exceeded for installation ID 1.",
		"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
	})
}

// sleepRecorder records the waits asked for, and really waits them when
// real is set (go-github refuses requests itself until a reset it saw).
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
	real  bool
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	if s.real {
		return sleepCtx(ctx, d)
	}
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newTestReporter builds a Reporter on f with fast retries; mod adjusts
// the options.
func newTestReporter(t *testing.T, f *fakeGitHub, eval Evaluator, mod func(*Options)) (*Reporter, *sleepRecorder) {
	t.Helper()
	o := Options{
		Client:         f.client(),
		Owner:          owner,
		Repo:           repo,
		BaseBranch:     "main",
		Evaluate:       eval,
		Logger:         zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		DeployStatuses: true,
		RequestTimeout: 5 * time.Second,
		BaseBackoff:    time.Millisecond,
		MaxAttempts:    4,
	}
	if mod != nil {
		mod(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sleepRecorder{}
	r.sleep = rec.sleep
	t.Cleanup(func() { _ = r.Close() })
	return r, rec
}

// prEvent is a pull_request webhook payload as go-github decodes it.
func prEvent(action string, number int, headSHA, baseRef string) *github.PullRequestEvent {
	return &github.PullRequestEvent{
		Action: github.String(action),
		Number: github.Int(number),
		Repo:   &github.Repository{ID: github.Int64(7), FullName: github.String(owner + "/" + repo)},
		PullRequest: &github.PullRequest{
			Number: github.Int(number),
			Title:  github.String("Shift checkout to v2"),
			Head: &github.PullRequestBranch{
				Ref: github.String("canary-v2"), SHA: github.String(headSHA),
				Repo: &github.Repository{ID: github.Int64(7)},
			},
			Base: &github.PullRequestBranch{
				Ref: github.String(baseRef), SHA: github.String(shaBase),
				Repo: &github.Repository{ID: github.Int64(7)},
			},
		},
	}
}
