package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "k-cue-budget",
		criterion: "with the default --eval-memory (1 GiB) and --eval-timeout 5s: `agent validate` of a string-doubling " +
			"CUE bomb exits 1 naming bomb.cue and the memory budget; a pushed commit with that bomb (webhook) is recorded " +
			"rejected with the memory-budget diagnostic on bomb.cue; a pull_request webhook whose head holds nested " +
			"comprehensions gets a failure status and check run naming the time budget (fake GitHub API), and its head is " +
			"fetched into the pull requests' clone (state-dir/git-pulls) and never into the synced one (state-dir/git); a following " +
			"good commit c2 is applied and served. Throughout, a client loop (no retries) gets only 200s from c1 then c2, " +
			"`agent status` answers every poll, and the agent's own RSS stays under 200 MiB",
		run: cueBudget,
	})
}

// The bombs of issue 10: 16 bytes doubled 26 times (1 GiB) in hidden
// fields, which validate; and ten nested comprehensions that keep nothing
// (time, not memory).
var (
	doublingBomb = func() string {
		var b strings.Builder
		b.WriteString("_a0: \"0123456789abcdef\"\n")
		for n := 1; n <= 26; n++ {
			fmt.Fprintf(&b, "_a%d: _a%d + _a%d\n", n, n-1, n-1)
		}
		return b.String()
	}()
	comprehensionBomb = "_l: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" +
		"_x: [for a in _l for b in _l for c in _l for d in _l for e in _l for f in _l " +
		"for g in _l for h in _l for i in _l for j in _l if false {a}]\n"
)

const (
	memoryBudgetMsg = "evaluation exceeded its memory budget (1 GiB)"
	timeBudgetMsg   = "evaluation exceeded its time budget (5s)"
	maxAgentRSSKiB  = 200 << 10
)

func cueBudget(ctx context.Context, t *T) error {
	// `agent validate` with the real binary.
	vdir := filepath.Join(t.dir, "validate")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, "config.yaml"), []byte(harness.ConfigYAML(t.upstream, "v", nil)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, "bomb.cue"), []byte(doublingBomb), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, t.bins.Agent, "validate", vdir).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "bomb.cue: "+memoryBudgetMsg) {
		return fmt.Errorf("agent validate of the bomb: %v, output %q; want exit 1 and %q", err, out, memoryBudgetMsg)
	}
	t.Logf("agent validate: exit 1: %s", strings.TrimSpace(string(out)))

	gh := newFakeGitHub()
	defer gh.Close()
	st, c1, err := cueBudgetStack(ctx, t, gh.URL)
	if err != nil {
		return err
	}

	watch := watchAgent(ctx, st)
	report := func() (watchReport, error) {
		r := watch()
		t.Logf("client loop: %d requests (%d from c1, %d from c2); agent status: %d polls, slowest %s; agent RSS peak %d MiB, evaluation child peak %d MiB",
			r.requests, r.labels["c1"], r.labels["c2"], r.polls, r.slowest.Round(time.Millisecond), r.rssKiB>>10, r.childKiB>>10)
		switch {
		case r.firstFailure != "":
			return r, fmt.Errorf("the gateway failed a request: %s", r.firstFailure)
		case r.statusErr != nil:
			return r, fmt.Errorf("agent status did not answer: %w", r.statusErr)
		case r.rssKiB > maxAgentRSSKiB:
			return r, fmt.Errorf("the agent grew to %d MiB during the bombs, want under %d MiB", r.rssKiB>>10, maxAgentRSSKiB>>10)
		}
		return r, nil
	}

	// The push path: a bomb commit is recorded rejected.
	bomb, err := st.Repo.WriteCommit("bomb.cue", doublingBomb, "generate routes with CUE")
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := waitRejected(ctx, st, bomb, memoryBudgetMsg); err != nil {
		report()
		return err
	}
	t.Logf("push of %s: rejected: bomb.cue: %s", short(bomb), memoryBudgetMsg)

	// The pull request path, on a branch of its own.
	if _, err := st.Repo.Git("checkout", "-q", "-b", "pr7", c1); err != nil {
		return err
	}
	if _, err := st.Repo.WriteCommit("bomb.cue", comprehensionBomb, "loop a little"); err != nil {
		return err
	}
	prHead, err := st.Repo.Git("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if _, err := st.Repo.Git("update-ref", "refs/pull/7/head", prHead); err != nil {
		return err
	}
	if _, err := st.Repo.Git("checkout", "-q", "main"); err != nil {
		return err
	}
	if err := sendPullRequest(ctx, st, 7, prHead, c1); err != nil {
		return err
	}
	if err := harness.WaitFor(ctx, 30*time.Second, "the PR's failure status naming the time budget", func() (bool, error) {
		return gh.has(prHead, "failure", timeBudgetMsg), nil
	}); err != nil {
		report()
		return fmt.Errorf("%w; GitHub saw: %s", err, gh.String())
	}
	// The status and the check run are separate requests; the check run's
	// annotations may land after the status.
	if err := harness.WaitFor(ctx, 10*time.Second, "a check run annotation naming the time budget", func() (bool, error) {
		return gh.checkRunHas(timeBudgetMsg), nil
	}); err != nil {
		return fmt.Errorf("%w; GitHub saw: %s", err, gh.String())
	}
	t.Logf("pull request #7 (%s): status failure and check run annotation: %s", short(prHead), timeBudgetMsg)
	// A head from a fork stays out of the clone that is synced and rolled
	// back from.
	for _, c := range []struct {
		dir  string
		want bool
	}{{"git-pulls", true}, {"git", false}} {
		has := exec.CommandContext(ctx, "git", "--git-dir", filepath.Join(st.AgentState, c.dir), "cat-file", "-e", prHead+"^{commit}").Run() == nil
		if has != c.want {
			return fmt.Errorf("the pull request's head in %s: %v, want %v", c.dir, has, c.want)
		}
	}

	// The agent still works: a good commit is applied.
	if err := os.Remove(filepath.Join(st.Repo.Dir, "bomb.cue")); err != nil {
		return err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	r, err := report()
	if err != nil {
		return err
	}
	if r.labels["c1"] == 0 || r.polls == 0 {
		return fmt.Errorf("the loops made %d requests and %d status polls", r.requests, r.polls)
	}
	return nil
}

// cueBudgetStack starts a gateway and an agent with GitHub reports to the
// fake API and --eval-timeout 5s, and waits until c1 is served.
func cueBudgetStack(ctx context.Context, t *T, githubURL string) (*harness.Stack, string, error) {
	st, err := harness.NewStack(harness.Options{Bins: t.bins, Dir: t.dir})
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(st.Close)
	c1, err := t.commit(st, "c1")
	if err != nil {
		return nil, "", err
	}
	if err := st.StartGateway(ctx); err != nil {
		return nil, "", err
	}
	tokenFile := filepath.Join(t.dir, "github-token")
	if err := os.WriteFile(tokenFile, []byte("e2e-token\n"), 0o600); err != nil {
		return nil, "", err
	}
	argv := append([]string{t.bins.Agent}, st.AgentArgs()...)
	argv = append(argv, "--github-repo", "e2e/config", "--github-url", githubURL, "--github-token-file", tokenFile, "--eval-timeout", "5s")
	p, err := harness.Start(st.Dir, "agent", argv...)
	if err != nil {
		return nil, "", err
	}
	st.Agent = p
	if err := harness.WaitFor(ctx, 15*time.Second, "the agent's control socket to answer", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("agent exited: %v (see %s)", p.Err(), p.Log)
		}
		_, err := st.AgentStatus(ctx)
		return err == nil, nil
	}); err != nil {
		return nil, "", err
	}
	return st, c1, t.waitServed(ctx, st, c1, "c1")
}

// waitRejected waits until the agent's history records sha rejected with a
// diagnostic on bomb.cue whose message holds msg.
func waitRejected(ctx context.Context, st *harness.Stack, sha, msg string) error {
	return harness.WaitFor(ctx, 30*time.Second, fmt.Sprintf("%s to be recorded rejected with %q", short(sha), msg), func() (bool, error) {
		h, err := st.History(ctx)
		if err != nil {
			return false, nil
		}
		for _, e := range h {
			if e.SHA != sha {
				continue
			}
			if e.Result != "rejected" {
				return false, fmt.Errorf("%s recorded %s (%s), want rejected", short(sha), e.Result, e.Error)
			}
			for _, d := range e.Diagnostics {
				if d.File == "bomb.cue" && strings.Contains(d.Message, msg) {
					return true, nil
				}
			}
			return false, fmt.Errorf("%s rejected with %+v, want bomb.cue: %s", short(sha), e.Diagnostics, msg)
		}
		return false, nil
	})
}

// sendPullRequest sends a signed pull_request "opened" delivery.
func sendPullRequest(ctx context.Context, st *harness.Stack, number int, head, base string) error {
	body, err := json.Marshal(map[string]any{
		"action": "opened", "number": number,
		"pull_request": map[string]any{
			"number": number,
			"head":   map[string]any{"sha": head, "ref": fmt.Sprintf("pr%d", number)},
			"base":   map[string]any{"sha": base, "ref": "main"},
		},
		"repository": map[string]any{"full_name": "e2e/config"},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.HookAddr+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("e2e-pr-%d-%d", os.Getpid(), number))
	req.Header.Set("X-Hub-Signature-256", harness.Sign(harness.WebhookSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sending the pull_request webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("pull_request webhook answered %s", resp.Status)
	}
	return nil
}

// watchReport is what watchAgent saw.
type watchReport struct {
	requests     int
	labels       map[string]int
	firstFailure string
	polls        int
	slowest      time.Duration
	statusErr    error
	rssKiB       int // the agent's peak RSS
	childKiB     int // the peak RSS of any child of the agent
}

// watchAgent runs a client loop against the gateway and polls `agent
// status` and the agent's RSS until the returned function is called.
func watchAgent(ctx context.Context, st *harness.Stack) func() watchReport {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		r  = watchReport{labels: map[string]int{}}
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			resp := st.Get("/")
			mu.Lock()
			r.requests++
			r.labels[resp.Config]++
			if resp.Code != http.StatusOK && r.firstFailure == "" {
				r.firstFailure = resp.String()
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			start := time.Now()
			_, err := st.AgentStatus(ctx)
			took := time.Since(start)
			rss, _ := harness.RSS(st.Agent.Pid())
			child := childRSS(st.Agent.Pid())
			mu.Lock()
			if err != nil && ctx.Err() == nil && r.statusErr == nil {
				r.statusErr = err
			}
			r.polls++
			r.slowest = max(r.slowest, took)
			r.rssKiB = max(r.rssKiB, rss)
			r.childKiB = max(r.childKiB, child)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() watchReport {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return r
	}
}

// childRSS returns the largest RSS (KiB) of pid's children, 0 when none.
func childRSS(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	peak := 0
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			var cpid int
			if _, err := fmt.Sscan(c, &cpid); err == nil {
				if rss, err := harness.RSS(cpid); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	}
	return peak
}

// fakeGitHub is the part of GitHub's REST API (Enterprise paths) that the
// agent's pull request reports use, recording statuses and check runs.
type fakeGitHub struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []fakeStatus
	checks   []string // bodies of check run creations and updates
	other    []string
}

type fakeStatus struct{ SHA, State, Description string }

func newFakeGitHub() *fakeGitHub {
	f := &fakeGitHub{}
	mux := http.NewServeMux()
	const repo = "/api/v3/repos/e2e/config"
	mux.HandleFunc("POST "+repo+"/statuses/{sha}", func(w http.ResponseWriter, r *http.Request) {
		var s fakeStatus
		_ = json.NewDecoder(r.Body).Decode(&s)
		s.SHA = r.PathValue("sha")
		f.mu.Lock()
		f.statuses = append(f.statuses, s)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":1}`)
	})
	check := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		f.mu.Lock()
		f.checks = append(f.checks, string(b))
		f.mu.Unlock()
		io.WriteString(w, `{"id":42}`)
	}
	mux.HandleFunc("POST "+repo+"/check-runs", check)
	mux.HandleFunc("PATCH "+repo+"/check-runs/{id}", check)
	mux.HandleFunc("GET "+repo+"/issues/{n}/comments", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") })
	mux.HandleFunc("POST "+repo+"/issues/{n}/comments", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":7}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.other = append(f.other, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		http.NotFound(w, r)
	})
	f.Server = httptest.NewServer(mux)
	return f
}

// has reports whether a status of state for sha says msg.
func (f *fakeGitHub) has(sha, state, msg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.statuses {
		if s.SHA == sha && s.State == state && strings.Contains(s.Description, msg) {
			return true
		}
	}
	return false
}

// checkRunHas reports whether a check run request carried msg.
func (f *fakeGitHub) checkRunHas(msg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.checks {
		if strings.Contains(c, msg) {
			return true
		}
	}
	return false
}

func (f *fakeGitHub) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("statuses %+v; %d check run requests; other %v", f.statuses, len(f.checks), f.other)
}
