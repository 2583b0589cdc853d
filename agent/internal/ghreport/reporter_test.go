package ghreport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/gitgate/gitgate/schemas"
)

// validEval evaluates any head as valid with the realistic plan.
func validEval(_ context.Context, pr PullRequest) (Evaluation, error) {
	return Evaluation{
		HeadSHA:      pr.HeadSHA,
		BaseSHA:      shaBase,
		PlanMarkdown: realisticPlan,
		Counts:       realisticCounts(),
		Changed:      true,
	}, nil
}

func invalidEval(n int) Evaluator {
	return func(_ context.Context, pr PullRequest) (Evaluation, error) {
		diags := make([]schemas.Diagnostic, n)
		for i := range diags {
			diags[i] = schemas.Diagnostic{
				File: "routes/api.yaml", Line: i + 1, Column: 5,
				Path:    fmt.Sprintf("routes.r%d.backends", i),
				Message: "weights sum to 90, not 100 <b>|`fix` them</b>",
			}
		}
		return Evaluation{HeadSHA: pr.HeadSHA, BaseSHA: shaBase, Diagnostics: diags}, nil
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// seq is the "METHOD path" list of requests.
func seq(rs []recorded) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

const p = "/repos/" + owner + "/" + repo

func TestReportPullRequestTwoPushesEditOneComment(t *testing.T) {
	t.Parallel()
	f := newFakeGitHub(t)
	r, _ := newTestReporter(t, f, validEval, nil)
	ctx := context.Background()
	pr := PullRequest{Number: 42, HeadSHA: shaA, BaseRef: "main", BaseSHA: shaBase}

	if err := r.ReportPullRequest(ctx, pr); err != nil {
		t.Fatalf("first push: %v", err)
	}
	want := []string{
		"POST " + p + "/statuses/" + shaA,
		"POST " + p + "/check-runs",
		"POST " + p + "/statuses/" + shaA,
		"PATCH " + p + "/check-runs/1002",
		"GET " + p + "/issues/42/comments",
		"POST " + p + "/issues/42/comments",
	}
	got := f.requests("")
	if !slices.Equal(seq(got), want) {
		t.Fatalf("first push requests:\n got %q\nwant %q", seq(got), want)
	}
	for i, w := range []struct{ state, ctx string }{{"pending", ContextValidate}, {"success", ContextValidate}} {
		b := f.requests("POST " + p + "/statuses/")[i].Body
		if str(b, "state") != w.state || str(b, "context") != w.ctx {
			t.Errorf("status %d = %v, want state %s context %s", i, b, w.state, w.ctx)
		}
		if d := str(b, "description"); d == "" || len([]rune(d)) > maxDescription {
			t.Errorf("status %d description %q: want 1..140 chars", i, d)
		}
	}
	create := got[1].Body
	if str(create, "name") != CheckName || str(create, "head_sha") != shaA || str(create, "status") != "in_progress" {
		t.Errorf("check run create body = %v", create)
	}
	update := got[3].Body
	if str(update, "status") != "completed" || str(update, "conclusion") != "success" {
		t.Errorf("check run update body = %v", update)
	}
	if got := str(f.requests("POST " + p + "/statuses/")[1].Body, "description"); got != "valid: 3 to create, 2 to update, 1 to delete" {
		t.Errorf("success description = %q", got)
	}

	// The second push edits the comment in place.
	f.reset()
	pr.HeadSHA = shaB
	if err := r.ReportPullRequest(ctx, pr); err != nil {
		t.Fatalf("second push: %v", err)
	}
	if n := len(f.requests("POST " + p + "/issues/")); n != 0 {
		t.Errorf("second push created %d comments, want an edit", n)
	}
	edits := f.requests("PATCH " + p + "/issues/comments/")
	if len(edits) != 1 || !strings.Contains(str(edits[0].Body, "body"), "`"+short(shaB)+"`") {
		t.Fatalf("second push edits = %v, want one edit naming %s", seq(edits), short(shaB))
	}
	cs := f.commentsOf(42)
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Body, CommentMarker) {
		t.Fatalf("comments on the PR = %d, want exactly one with the marker", len(cs))
	}

	// A reporter that restarted finds the comment by its marker, across
	// pages, and still edits it.
	f.addComment(42, "LGTM")
	f.addComment(42, "please also bump the timeout")
	f.mu.Lock()
	f.comments[42] = append(f.comments[42][1:], f.comments[42][0]) // the plan comment is now on page 2
	f.mu.Unlock()
	f.reset()
	r2, _ := newTestReporter(t, f, validEval, nil)
	pr.HeadSHA = shaA
	if err := r2.ReportPullRequest(ctx, pr); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	lists := f.requests("GET " + p + "/issues/42/comments")
	if len(lists) != 2 || lists[1].Query.Get("page") != "2" || lists[0].Query.Get("per_page") != "100" {
		t.Errorf("list requests = %v %v, want page 1 (per_page=100) then page 2", seq(lists), lists)
	}
	if n := len(f.requests("POST " + p + "/issues/")); n != 0 {
		t.Errorf("restarted reporter created %d comments, want an edit", n)
	}
	if n := len(f.commentsOf(42)); n != 3 {
		t.Errorf("comments on the PR = %d, want 3 (two human, one plan)", n)
	}
}

func TestReportPullRequestCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		eval      Evaluator
		intercept func(w http.ResponseWriter, r *http.Request, rec recorded) bool
		pushes    int // 1 (default): shaA; 2: shaA then shaB
		wantErr   bool
		check     func(t *testing.T, f *fakeGitHub, r *Reporter)
	}{
		{
			name: "5,000 diagnostics: the first 1,000 annotated, in 20 requests",
			eval: invalidEval(5000),
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				patches := f.requests("PATCH " + p + "/check-runs/")
				if len(patches) != maxAnnotations/annotationsPerRequest {
					t.Fatalf("check run updates = %d, want %d", len(patches), maxAnnotations/annotationsPerRequest)
				}
				total := 0
				for _, u := range patches {
					out, _ := u.Body["output"].(map[string]any)
					anns, _ := out["annotations"].([]any)
					total += len(anns)
				}
				if total != maxAnnotations {
					t.Errorf("annotations = %d, want %d", total, maxAnnotations)
				}
				last := patches[len(patches)-1]
				if str(last.Body, "status") != "completed" || str(last.Body, "conclusion") != "failure" {
					t.Errorf("last update %v, want completed with failure", last.Body)
				}
				st := f.requests("POST " + p + "/statuses/")
				if d := str(st[len(st)-1].Body, "description"); !strings.HasPrefix(d, "invalid: 5000 problems") {
					t.Errorf("final status description %q, want it to count every problem", d)
				}
			},
		},
		{
			name: "500 diagnostics: 10 annotation batches of 50 and a comment under the limit",
			eval: invalidEval(500),
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				patches := f.requests("PATCH " + p + "/check-runs/")
				if len(patches) != 10 {
					t.Fatalf("check run updates = %d, want 10", len(patches))
				}
				lines := map[float64]bool{}
				for i, u := range patches {
					out, _ := u.Body["output"].(map[string]any)
					anns, _ := out["annotations"].([]any)
					if len(anns) != 50 {
						t.Errorf("batch %d carries %d annotations, want 50", i, len(anns))
					}
					for _, a := range anns {
						am := a.(map[string]any)
						if am["path"] != "routes/api.yaml" || am["annotation_level"] != "failure" || am["start_line"] != am["end_line"] {
							t.Errorf("annotation %v", am)
						}
						lines[am["start_line"].(float64)] = true
					}
					last := i == len(patches)-1
					if (str(u.Body, "status") == "completed") != last {
						t.Errorf("batch %d status %q: only the last completes", i, str(u.Body, "status"))
					}
					if last && str(u.Body, "conclusion") != "failure" {
						t.Errorf("conclusion = %q, want failure", str(u.Body, "conclusion"))
					}
				}
				if len(lines) != 500 {
					t.Errorf("distinct annotated lines = %d, want 500", len(lines))
				}
				st := f.requests("POST " + p + "/statuses/")
				if d := str(st[len(st)-1].Body, "description"); str(st[len(st)-1].Body, "state") != "failure" || len([]rune(d)) > maxDescription || !strings.HasPrefix(d, "invalid: 500 problems; first: routes/api.yaml:1:5") {
					t.Errorf("final status = %v", st[len(st)-1].Body)
				}
				cs := f.commentsOf(42)
				if len(cs) != 1 {
					t.Fatalf("comments = %d, want 1", len(cs))
				}
				body := cs[0].Body
				if len(body) > maxComment {
					t.Errorf("comment is %d bytes, over %d", len(body), maxComment)
				}
				assertClosedMarkdown(t, body)
				if !strings.Contains(body, "and 450 more") || strings.Contains(body, "<b>") {
					t.Errorf("comment does not bound or escape the problems list")
				}
			},
		},
		{
			name:   "personal token: check runs refused, statuses still posted, warned once",
			eval:   validEval,
			pushes: 2,
			intercept: func(w http.ResponseWriter, r *http.Request, rec recorded) bool {
				if strings.HasSuffix(r.URL.Path, "/check-runs") {
					forbidden(w, "Resource not accessible by personal access token")
					return true
				}
				return false
			},
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				if n := len(f.requests("POST " + p + "/check-runs")); n != 1 {
					t.Errorf("check run creates = %d, want 1 (then statuses only)", n)
				}
				if n := len(f.requests("PATCH " + p + "/check-runs")); n != 0 {
					t.Errorf("check run updates = %d, want 0", n)
				}
				if n := len(f.requests("POST " + p + "/statuses/")); n != 4 {
					t.Errorf("statuses = %d, want 4 over two pushes", n)
				}
			},
		},
		{
			name:   "fork with a read-only token: every write refused, no crash, no error",
			eval:   validEval,
			pushes: 2,
			intercept: func(w http.ResponseWriter, r *http.Request, rec recorded) bool {
				if r.Method != http.MethodGet {
					forbidden(w, "Resource not accessible by integration")
					return true
				}
				return false
			},
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				if n := len(f.requests("POST " + p + "/issues/42/comments")); n != 2 {
					t.Errorf("comment creates = %d, want one try per push", n)
				}
				if len(f.commentsOf(42)) != 0 {
					t.Errorf("a comment was stored despite 403")
				}
			},
		},
		{
			name: "head force-pushed while validating: report on the evaluated sha",
			eval: func(ctx context.Context, pr PullRequest) (Evaluation, error) {
				ev, err := validEval(ctx, pr)
				ev.HeadSHA = shaB
				return ev, err
			},
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				onA := f.requests("POST " + p + "/statuses/" + shaA)
				if len(onA) != 2 || str(onA[0].Body, "state") != "pending" || str(onA[1].Body, "state") != "error" {
					t.Errorf("statuses on the event sha = %v", onA)
				}
				onB := f.requests("POST " + p + "/statuses/" + shaB)
				if len(onB) != 1 || str(onB[0].Body, "state") != "success" {
					t.Errorf("statuses on the evaluated sha = %v", onB)
				}
				creates := f.requests("POST " + p + "/check-runs")
				if len(creates) != 2 || str(creates[1].Body, "head_sha") != shaB {
					t.Errorf("check runs created = %v", creates)
				}
				if body := f.commentsOf(42)[0].Body; !strings.Contains(body, short(shaB)) {
					t.Errorf("comment does not name the evaluated sha")
				}
			},
		},
		{
			name: "evaluator fails: status error and a failed check",
			eval: func(context.Context, PullRequest) (Evaluation, error) {
				return Evaluation{}, errors.New("fetching refs/pull/42/head from https://x-access-token:ghs_secret@github.com/acme/x: timeout")
			},
			wantErr: true,
			check: func(t *testing.T, f *fakeGitHub, r *Reporter) {
				st := f.requests("POST " + p + "/statuses/")
				last := st[len(st)-1].Body
				if str(last, "state") != "error" || strings.Contains(str(last, "description"), "ghs_secret") {
					t.Errorf("final status = %v: want error without the token", last)
				}
				if n := len(f.requests("POST " + p + "/issues/")); n != 0 {
					t.Errorf("comment posted for an unevaluated head")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGitHub(t)
			f.setIntercept(tc.intercept)
			r, _ := newTestReporter(t, f, tc.eval, nil)
			for i, sha := range []string{shaA, shaB}[:max(tc.pushes, 1)] {
				err := r.ReportPullRequest(context.Background(), PullRequest{Number: 42, HeadSHA: sha, BaseRef: "main", BaseSHA: shaBase})
				if (err != nil) != tc.wantErr {
					t.Fatalf("push %d: ReportPullRequest error = %v, want error %v", i+1, err, tc.wantErr)
				}
			}
			tc.check(t, f, r)
		})
	}
}

func TestSameStatusNotPostedTwice(t *testing.T) {
	t.Parallel()
	f := newFakeGitHub(t)
	r, _ := newTestReporter(t, f, validEval, nil)
	ctx := context.Background()
	pr := PullRequest{Number: 7, HeadSHA: shaA, BaseRef: "main", BaseSHA: shaBase}
	for i := 0; i < 3; i++ { // a redelivered webhook, a reopen
		if err := r.ReportPullRequest(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	if got := seq(f.requests("POST " + p + "/statuses/")); len(got) != 2 {
		t.Errorf("statuses posted = %d, want 2 (pending, success) for one sha", len(got))
	}
	if n := len(f.requests("PATCH " + p + "/issues/comments/")); n != 0 {
		t.Errorf("unchanged comment edited %d times", n)
	}

	r.CommitApplied(ctx, shaA, "v1")
	r.CommitApplied(ctx, shaA, "v1")
	for _, d := range []Deploy{{SHA: shaA, Version: "v1"}, {SHA: shaA, Version: "v1"}} {
		if err := r.ReportDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.requests("POST " + p + "/statuses/" + shaA)); n != 3 {
		t.Errorf("statuses on %s = %d, want 3 (deploy posted once)", shaA, n)
	}
}

func TestDeployReports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		deployments bool
		report      func(r *Reporter)
		want        []string
		check       func(t *testing.T, rs []recorded)
	}{
		{
			name:   "applied: deploy status success",
			report: func(r *Reporter) { r.CommitApplied(context.Background(), shaA, shaA[:12]) },
			want:   []string{"POST " + p + "/statuses/" + shaA},
			check: func(t *testing.T, rs []recorded) {
				if b := rs[0].Body; str(b, "context") != ContextDeploy || str(b, "state") != "success" || str(b, "description") != "live as "+shaA[:12] {
					t.Errorf("status = %v", b)
				}
			},
		},
		{
			name: "rejected: deploy status failure with the first problem",
			report: func(r *Reporter) {
				r.CommitFailed(context.Background(), shaA, []schemas.Diagnostic{
					{File: "routes.yaml", Line: 3, Column: 7, Path: "routes.api.backends", Message: "weights sum to 90, not 100"},
					{File: "routes.yaml", Line: 9, Message: "unknown upstream"},
				}, errors.New("invalid"))
			},
			want: []string{"POST " + p + "/statuses/" + shaA},
			check: func(t *testing.T, rs []recorded) {
				want := "invalid: 2 problems; first: routes.yaml:3:7: routes.api.backends: weights sum to 90, not 100"
				if b := rs[0].Body; str(b, "state") != "failure" || str(b, "description") != want {
					t.Errorf("status = %v, want description %q", b, want)
				}
			},
		},
		{
			name:        "deployments: a deployment and its status",
			deployments: true,
			report:      func(r *Reporter) { r.CommitApplied(context.Background(), shaB, "v2") },
			want:        []string{"POST " + p + "/deployments", "POST " + p + "/deployments/1001/statuses"},
			check: func(t *testing.T, rs []recorded) {
				d := rs[0].Body
				if str(d, "ref") != shaB || str(d, "environment") != "production" || d["auto_merge"] != false {
					t.Errorf("deployment = %v", d)
				}
				if rc, ok := d["required_contexts"].([]any); !ok || len(rc) != 0 {
					t.Errorf("required_contexts = %v, want [] so GitHub does not gate the record", d["required_contexts"])
				}
				if s := rs[1].Body; str(s, "state") != "success" || str(s, "description") != "live as v2" {
					t.Errorf("deployment status = %v", s)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGitHub(t)
			r, _ := newTestReporter(t, f, validEval, func(o *Options) { o.Deployments = tc.deployments })
			tc.report(r)
			runUntil(t, r, func() bool { return len(f.requests("")) >= len(tc.want) })
			rs := f.requests("")
			if !slices.Equal(seq(rs), tc.want) {
				t.Fatalf("requests = %q, want %q", seq(rs), tc.want)
			}
			tc.check(t, rs)
		})
	}
}

// runUntil runs r until done reports true (polling), then closes it.
func runUntil(t *testing.T, r *Reporter, done func() bool) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.Run(context.Background()); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Error("gave up waiting for the reporter")
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

func TestHandlePullRequestFiltersAndCoalesces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ev     func() *github.PullRequestEvent
		queued bool
	}{
		{"opened on main", func() *github.PullRequestEvent { return prEvent("opened", 1, shaA, "main") }, true},
		{"synchronize on main", func() *github.PullRequestEvent { return prEvent("synchronize", 1, shaA, "main") }, true},
		{"reopened on main", func() *github.PullRequestEvent { return prEvent("reopened", 1, shaA, "main") }, true},
		{"closed", func() *github.PullRequestEvent { return prEvent("closed", 1, shaA, "main") }, false},
		{"labeled", func() *github.PullRequestEvent { return prEvent("labeled", 1, shaA, "main") }, false},
		{"other base branch", func() *github.PullRequestEvent { return prEvent("opened", 1, shaA, "release") }, false},
		{"other repository", func() *github.PullRequestEvent {
			ev := prEvent("opened", 1, shaA, "main")
			ev.Repo.FullName = github.String("evil/gateway-config")
			return ev
		}, false},
		{"head sha not a sha", func() *github.PullRequestEvent { return prEvent("opened", 1, "main", "main") }, false},
		{"no pull request", func() *github.PullRequestEvent {
			e := prEvent("opened", 1, shaA, "main")
			e.PullRequest = nil
			return e
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestReporter(t, newFakeGitHub(t), validEval, nil)
			r.HandlePullRequest(context.Background(), tc.ev())
			if got := r.q.len() == 1; got != tc.queued {
				t.Errorf("queued = %v, want %v", got, tc.queued)
			}
		})
	}

	t.Run("newest event per pull request wins", func(t *testing.T) {
		t.Parallel()
		f := newFakeGitHub(t)
		var mu sync.Mutex
		var evaluated []string
		eval := func(ctx context.Context, pr PullRequest) (Evaluation, error) {
			mu.Lock()
			evaluated = append(evaluated, fmt.Sprintf("%d@%s", pr.Number, short(pr.HeadSHA)))
			mu.Unlock()
			return validEval(ctx, pr)
		}
		r, _ := newTestReporter(t, f, eval, nil)
		ctx := context.Background()
		r.HandlePullRequest(ctx, prEvent("opened", 1, shaA, "main"))
		r.HandlePullRequest(ctx, prEvent("opened", 2, shaA, "main"))
		r.HandlePullRequest(ctx, prEvent("synchronize", 1, shaB, "main"))
		runUntil(t, r, func() bool { return len(f.requests("POST "+p+"/issues/")) >= 2 })
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"1@bbbbbbb", "2@aaaaaaa"}; !slices.Equal(evaluated, want) {
			t.Errorf("evaluated %v, want %v", evaluated, want)
		}
	})

	t.Run("a full queue drops the oldest pull request", func(t *testing.T) {
		t.Parallel()
		r, _ := newTestReporter(t, newFakeGitHub(t), validEval, func(o *Options) { o.QueuePRs = 2 })
		for n := 1; n <= 3; n++ {
			r.HandlePullRequest(context.Background(), prEvent("opened", n, shaA, "main"))
		}
		var got []int
		for j, ok := r.q.pop(); ok; j, ok = r.q.pop() {
			got = append(got, j.pr.Number)
		}
		if !slices.Equal(got, []int{2, 3}) {
			t.Errorf("queued PRs = %v, want [2 3]", got)
		}
	})
}

func TestCloseStopsARequestInFlight(t *testing.T) {
	t.Parallel()
	f := newFakeGitHub(t)
	started := make(chan struct{})
	var once sync.Once
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, rec recorded) bool {
		once.Do(func() { close(started) })
		<-r.Context().Done() // GitHub hangs until the client gives up
		return true
	})
	r, _ := newTestReporter(t, f, validEval, func(o *Options) { o.RequestTimeout = time.Minute })
	r.CommitApplied(context.Background(), shaA, "v1")
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	<-started
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after Close, want nil", err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestNewRequiresOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Owner: owner})
	if err == nil || !strings.Contains(err.Error(), "Client, Repo, BaseBranch") {
		t.Errorf("New error = %v, want the missing options named", err)
	}
}
