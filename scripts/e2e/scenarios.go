package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// scenarios is the battery, in the order it runs.
var scenarios = []scenario{
	{
		name: "a-git-host-down",
		criterion: "the agent tracks a repo served by `git http-backend` over HTTP; while the host is down the gateway " +
			"keeps serving c1 (20/20 requests) and agent status shows a source error; once it is back, a commit made " +
			"during the outage (c2) is applied and served and the source error clears",
		run: gitHostDown,
	},
	{
		name: "b-gateway-kill9-under-load",
		criterion: "a client loop (no retries) runs while the gateway is killed with SIGKILL and restarted: every request " +
			"before the kill is served by c2; after the restart the first request that gets an answer, and every one " +
			"after it, is served by c2 (last-known-good); the agent's next sync sees the gateway at c2",
		run: gatewayKillUnderLoad,
	},
	{
		name: "c-agent-kill9-during-sync",
		criterion: "the agent is killed with SIGKILL during its first clone and then 12 times at 0-200 ms after a " +
			"commit's webhook, and once more with its clone's remote-tracking ref emptied and config torn (as a kill " +
			"inside go-git's in-place writes leaves them); after the last restart it logs the repair and converges to the " +
			"branch head (applied, gateway at it, served), " +
			"its history file has no torn or corrupt line, nothing was dropped at open, and state.json names a " +
			"stored bundle",
		run: agentKillDuringSync,
	},
	{
		name: "c2-agent-kill-between-push-and-record",
		criterion: "the gateway already runs commit c2 (pushed, as an agent killed before recording it had done) when " +
			"the agent starts: it records c2 as applied, and after one more restart c2 is still served",
		run: killBetweenPushAndRecord,
	},
	{
		name: "d-disk-full",
		criterion: "agent and gateway state dirs on 8 MiB tmpfs mounts filled to ENOSPC: with the agent's full, c1 keeps " +
			"serving and agent status reports \"no space left on device\"; with space back, c2 is applied; full again, " +
			"`agent rollback` fails naming the full disk and c2 stays, unpinned. With the " +
			"gateway's full, c3 is applied and served from memory and the failed save is reported (metric " +
			"gitgate_admin_lkg_save_failures_total and log); with space back, c4 is saved as last-known-good and a " +
			"SIGKILLed gateway restarts serving c4; the history file stays clean",
		run: diskFull,
	},
	{
		name: "d2-history-append-on-full-disk",
		criterion: "with the agent's state dir full, heal entries (gateway edited by hand, then `agent sync`) are " +
			"recorded until one append fails with ENOSPC; with space back, the next heal is recorded and the history " +
			"file has no torn or corrupt line",
		run: historyOnFullDisk,
	},
	{
		name: "e-corrupt-last-known-good",
		criterion: "for a truncated, a tampered (digest mismatch) and a non-JSON bundle.json: the restarted gateway " +
			"does not serve (readyz 503, data plane not 200), reports the file as its last rejected attempt, moves it " +
			"aside; the agent, started again, heals it: c1 served, readyz 200, bundle.json rewritten at c1",
		run: corruptLKG,
	},
	{
		name: "f-stale-admin-socket",
		criterion: "after SIGKILL the admin socket file is left behind and refuses connections; the gateway restarts " +
			"on it (socket mode 0600, c1 served, agent converged); a regular file at the socket path makes the gateway " +
			"exit non-zero and is left intact",
		run: staleSocket,
	},
	{
		name: "g-webhook-poll-race",
		criterion: "15 commits, each followed by 5 concurrent webhooks, with a 1s poll interval: the agent ends on the " +
			"branch head (applied, served), no commit is recorded as applied twice, the head is applied exactly once, " +
			"no attempt failed, and two more poll intervals apply nothing new",
		run: webhookPollRace,
	},
	{
		name: "h-scripted-scenario",
		criterion: "commit+webhook -> c2 served; invalid commit -> rejected with config.yaml:line:col, c2 still served; " +
			"`agent rollback` -> c1 served, pinned, c2 marked bad; new commit c4 -> pin lifts, c4 served; SIGKILL of the " +
			"gateway -> restart serves c4 at once and `agent sync` shows it converged",
		run: scriptedScenario,
	},
}

// gitHost serves the scenario's directory over smart HTTP with
// `git http-backend` behind net/http/cgi, and can go down and come back on
// the same address.
type gitHost struct {
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func (g *gitHost) up() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("git host listening on %s: %w", g.addr, err)
	}
	srv := &http.Server{Handler: g.h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		_ = srv.Serve(ln)
		close(done)
	}()
	g.srv, g.done = srv, done
	return nil
}

func (g *gitHost) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return
	}
	_ = g.srv.Close()
	<-g.done
	g.srv = nil
}

func gitHostDown(ctx context.Context, t *T) error {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return Skip("git is not installed")
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	host := &gitHost{addr: addr, h: &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + t.dir, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"},
	}}
	if err := host.up(); err != nil {
		return err
	}
	t.Cleanup(host.down)
	st, _, err := t.Stack(ctx, harness.Options{RepoURL: "http://" + addr + "/config-repo"})
	if err != nil {
		return err
	}
	t.Logf("c1 applied from %s", st.RepoURL)

	host.down()
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	var status harness.AgentStatus
	if err := harness.WaitFor(ctx, 15*time.Second, "agent status to report the source error", func() (bool, error) {
		status, err = st.AgentStatus(ctx)
		return err == nil && status.SourceError != "", nil
	}); err != nil {
		return err
	}
	t.Logf("host down: agent status sourceError=%q", status.SourceError)
	if err := expectServing(st, "c1", 20); err != nil {
		return fmt.Errorf("while the Git host is down: %w", err)
	}
	t.Logf("host down: 20/20 requests served by c1")

	if err := host.up(); err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	if status, err = st.AgentStatus(ctx); err != nil {
		return err
	}
	if status.SourceError != "" {
		return fmt.Errorf("after the host came back, status still shows sourceError=%q", status.SourceError)
	}
	t.Logf("host back: c2 (%s) applied and served, source error cleared", short(c2))
	return nil
}

// sample is one request of a load loop.
type sample struct {
	at time.Time
	r  harness.Response
}

// loadLoop sends GET / over kept-alive connections, one at a time, with no
// retries, until stop is called; stop returns every sample.
func loadLoop(st *harness.Stack) (stop func() []sample) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	url := "http://" + st.GatewayAddr + "/"
	var (
		mu      sync.Mutex
		samples []sample
	)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			var r harness.Response
			resp, err := c.Get(url)
			if err != nil {
				r.Err = err
				time.Sleep(time.Millisecond) // a refused dial returns at once
			} else {
				r.Code, r.Config = resp.StatusCode, resp.Header.Get("X-Config")
				_ = resp.Body.Close()
			}
			mu.Lock()
			samples = append(samples, sample{at: time.Now(), r: r})
			mu.Unlock()
		}
	}()
	return func() []sample {
		close(quit)
		<-done
		c.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		return samples
	}
}

func gatewayKillUnderLoad(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{PollInterval: "1s"})
	if err != nil {
		return err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	stop := loadLoop(st)
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	st.Gateway.Kill9()
	time.Sleep(200 * time.Millisecond)
	before, err := st.AgentStatus(ctx)
	if err != nil {
		return err
	}
	restarted := time.Now()
	if err := st.StartGateway(ctx); err != nil {
		stop()
		return err
	}
	time.Sleep(500 * time.Millisecond)
	samples := stop()

	var pre, down, post []sample
	for _, s := range samples {
		switch {
		case s.at.Before(killed):
			pre = append(pre, s)
		case s.at.Before(restarted):
			down = append(down, s)
		default:
			post = append(post, s)
		}
	}
	if len(pre) == 0 {
		return errors.New("the load loop made no request before the kill")
	}
	for i, s := range pre {
		if !s.r.OK("c2") {
			return fmt.Errorf("before the kill, request %d: %s", i+1, s.r)
		}
	}
	first := -1
	for i, s := range post {
		if s.r.Err == nil {
			first = i
			break
		}
	}
	if first < 0 {
		return fmt.Errorf("no request was answered in the %d made after the restart", len(post))
	}
	for i, s := range post[first:] {
		if !s.r.OK("c2") {
			return fmt.Errorf("after the restart, answered request %d: %s, want 200 from c2 (last-known-good)", i+1, s.r)
		}
	}
	t.Logf("load: %d requests served before the kill, %d refused/reset while down or starting, then %d/%d served by c2 from the first answer on",
		len(pre), len(down)+first, len(post)-first, len(post)-first)
	if err := harness.WaitFor(ctx, 10*time.Second, "the agent to see the restarted gateway at c2", func() (bool, error) {
		s, err := st.AgentStatus(ctx)
		if err != nil || s.Syncs <= before.Syncs {
			return false, nil
		}
		return st.Converged(ctx, c2)
	}); err != nil {
		return err
	}
	t.Logf("agent re-converged: gateway version == desired == %s", short(c2))
	return nil
}

func agentKillDuringSync(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{PollInterval: "2s"})
	if err != nil {
		return err
	}
	// Kill during the first clone of a fresh state directory.
	st.Agent.Kill9()
	if err := os.RemoveAll(st.AgentState); err != nil {
		return err
	}
	if _, err := t.commit(st, "k-clone"); err != nil {
		return err
	}
	p, err := harness.Start(t.dir, "agent", append([]string{t.bins.Agent}, st.AgentArgs()...)...)
	if err != nil {
		return err
	}
	time.Sleep(60 * time.Millisecond)
	p.Kill9()
	if err := st.StartAgent(ctx); err != nil {
		return fmt.Errorf("restarting after a kill during the first clone: %w", err)
	}
	t.Logf("killed during the first clone of an empty state dir; restarted")

	delays := []time.Duration{0, 1, 3, 6, 10, 15, 25, 40, 60, 90, 130, 200}
	label := ""
	for i, d := range delays {
		d *= time.Millisecond
		label = "k" + strconv.Itoa(i)
		if _, err := t.push(ctx, st, label); err != nil {
			return err
		}
		time.Sleep(d)
		st.Agent.Kill9()
		if err := st.StartAgent(ctx); err != nil {
			return fmt.Errorf("restarting after kill %d (%s after the webhook): %w", i+1, d, err)
		}
	}
	t.Logf("killed %d times at 0-200 ms after a webhook, restarted each time", len(delays))
	// Once more, leaving what a kill inside go-git's in-place writes
	// leaves (truncated, not yet written): an empty remote-tracking ref
	// and a torn config. The agent must repair both when it starts.
	label = "k-torn"
	if _, err := t.commit(st, label); err != nil {
		return err
	}
	st.Agent.Kill9()
	git := filepath.Join(st.AgentState, "git")
	if err := os.WriteFile(filepath.Join(git, "refs", "remotes", "origin", "main"), nil, 0o600); err != nil {
		return fmt.Errorf("tearing the remote-tracking ref: %w", err)
	}
	if err := os.WriteFile(filepath.Join(git, "config"), []byte("[core]\n\tbare = true\n[remote \"ori"), 0o600); err != nil {
		return fmt.Errorf("tearing the config: %w", err)
	}
	if err := st.StartAgent(ctx); err != nil {
		return fmt.Errorf("restarting on a torn git storage: %w", err)
	}
	head, err := st.Repo.Head()
	if err != nil {
		return err
	}
	var s harness.AgentStatus
	if err := harness.WaitFor(ctx, 20*time.Second, "the head to be attempted and served", func() (bool, error) {
		s, err = st.AgentStatus(ctx)
		return err == nil && s.LastAttempted == head && st.Get("/").OK(label), nil
	}); err != nil {
		return err
	}
	if s.LastApplied != head && s.LastResult == "no-op" {
		return fmt.Errorf("the head %s was recorded as a no-op but lastApplied is still %s", short(head), short(s.LastApplied))
	}
	if err := t.waitServed(ctx, st, head, label); err != nil {
		return err
	}
	t.Logf("converged to the branch head %s", short(head))
	if !logContains(st.Agent.Log, "repaired the git storage") {
		return fmt.Errorf("the agent started on a torn ref and config without logging a repair (see %s)", st.Agent.Log)
	}
	t.Logf("started on an emptied ref and a torn config: repaired (logged) and converged")
	if err := checkAgentState(st, head); err != nil {
		return err
	}
	t.Logf("history file clean, nothing dropped at open, state.json and the head's bundle consistent")
	return nil
}

// checkAgentState checks the agent's state directory: an intact history,
// no line dropped by any start, and state.json naming a stored bundle of
// lastApplied == want.
func checkAgentState(st *harness.Stack, want string) error {
	rep, err := harness.CheckHistoryFile(filepath.Join(st.AgentState, "history.jsonl"))
	if err != nil {
		return err
	}
	if len(rep.Bad) > 0 {
		return fmt.Errorf("history file has %d bad lines: %s", len(rep.Bad), strings.Join(rep.Bad, "; "))
	}
	if rep.Lines == 0 {
		return errors.New("history file is empty")
	}
	if logContains(st.Agent.Log, "dropped torn or corrupt history lines") {
		return fmt.Errorf("an agent start dropped torn or corrupt history lines (see %s)", st.Agent.Log)
	}
	b, err := os.ReadFile(filepath.Join(st.AgentState, "state.json"))
	if err != nil {
		return fmt.Errorf("reading state.json: %w", err)
	}
	var state struct {
		LastApplied string `json:"lastApplied"`
	}
	if err := json.Unmarshal(b, &state); err != nil {
		return fmt.Errorf("decoding state.json: %w", err)
	}
	if state.LastApplied != want {
		return fmt.Errorf("state.json lastApplied = %s, want %s", short(state.LastApplied), short(want))
	}
	if _, err := os.Stat(filepath.Join(st.AgentState, "bundles", want+".json")); err != nil {
		return fmt.Errorf("bundle of lastApplied: %w", err)
	}
	return nil
}

// mountTmpfs mounts a tmpfs of size at dir and registers its unmount.
func mountTmpfs(t *T, dir, size string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		return Skip(fmt.Sprintf("mount -t tmpfs at %s failed (needs root or CAP_SYS_ADMIN): %v: %s", dir, err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching lazily", dir, err, strings.TrimSpace(string(out)))
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return nil
}

// fill writes <dir>/filler until the file system is full; the returned
// func frees the space.
func fill(dir string) (free func() error, err error) {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, size := range []int{1 << 16, 1 << 12, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return nil, err
	}
	return func() error { return os.Remove(path) }, nil
}

func diskFull(ctx context.Context, t *T) error {
	if os.Geteuid() != 0 {
		return Skip("mounting a tmpfs needs root")
	}
	agentFS, gwFS := filepath.Join(t.dir, "agent-fs"), filepath.Join(t.dir, "gateway-fs")
	for _, d := range []string{agentFS, gwFS} {
		if err := mountTmpfs(t, d, "8m"); err != nil {
			return err
		}
	}
	st, _, err := t.Stack(ctx, harness.Options{AgentState: filepath.Join(agentFS, "state"), GatewayState: filepath.Join(gwFS, "state")})
	if err != nil {
		return err
	}

	free, err := fill(agentFS)
	if err != nil {
		return err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	var status harness.AgentStatus
	if err := harness.WaitFor(ctx, 15*time.Second, "agent status to report the full disk", func() (bool, error) {
		status, err = st.AgentStatus(ctx)
		return err == nil && strings.Contains(status.LastError+status.SourceError, "no space left on device"), nil
	}); err != nil {
		return err
	}
	t.Logf("agent disk full: status lastError=%q", status.LastError)
	if err := expectServing(st, "c1", 20); err != nil {
		return fmt.Errorf("with the agent's disk full: %w", err)
	}
	t.Logf("agent disk full: 20/20 requests served by c1")
	if err := free(); err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return fmt.Errorf("after the agent's disk was freed: %w", err)
	}
	t.Logf("agent disk freed: c2 applied and served")

	// A rollback writes the bundle store before it pushes: with the disk
	// full it must fail and leave c2 running, unpinned.
	if free, err = fill(agentFS); err != nil {
		return err
	}
	if out, err := st.CLI(ctx, "rollback", "--reason", "disk full"); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		return fmt.Errorf("`agent rollback` with the agent's disk full: %v (%s); want an error naming the full disk", err, strings.TrimSpace(out))
	}
	if status, err = st.AgentStatus(ctx); err != nil || status.Mode != "tracking" || status.LastApplied != c2 {
		return fmt.Errorf("after a failed rollback: mode %q lastApplied %s, %v; want tracking at c2", status.Mode, short(status.LastApplied), err)
	}
	if err := expectServing(st, "c2", 10); err != nil {
		return fmt.Errorf("after a failed rollback: %w", err)
	}
	if err := free(); err != nil {
		return err
	}
	t.Logf("agent disk full again: `agent rollback` fails naming the full disk; c2 still served, not pinned")

	if free, err = fill(gwFS); err != nil {
		return err
	}
	c3, err := t.push(ctx, st, "c3")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c3, "c3"); err != nil {
		return fmt.Errorf("with the gateway's disk full: %w", err)
	}
	_, metrics, err := st.AdminGet(ctx, "/metrics")
	if err != nil {
		return err
	}
	if n := metricValue(metrics, "gitgate_admin_lkg_save_failures_total"); n < 1 {
		return fmt.Errorf("gitgate_admin_lkg_save_failures_total = %v, want >= 1", n)
	}
	if !logContains(st.Gateway.Log, "not saved as last-known-good") {
		return fmt.Errorf("the gateway log does not report the failed save (see %s)", st.Gateway.Log)
	}
	t.Logf("gateway disk full: c3 applied and served from memory; save failure in metric and log (GET /v1/status has no field for it)")
	if err := free(); err != nil {
		return err
	}
	c4, err := t.push(ctx, st, "c4")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c4, "c4"); err != nil {
		return err
	}
	if v, err := lkgVersion(st); err != nil || v != c4 {
		return fmt.Errorf("last-known-good after the gateway's disk was freed: version %s, %v; want %s", short(v), err, short(c4))
	}
	st.Gateway.Kill9()
	if err := st.StartGateway(ctx); err != nil {
		return err
	}
	if r := st.Get("/"); !r.OK("c4") {
		return fmt.Errorf("restarted gateway's first request: %s, want 200 from c4", r)
	}
	t.Logf("gateway disk freed: c4 saved as last-known-good; SIGKILL + restart serves c4 at once")
	if rep, err := harness.CheckHistoryFile(filepath.Join(st.AgentState, "history.jsonl")); err != nil || len(rep.Bad) > 0 {
		return fmt.Errorf("agent history after the full disk: %v %s", err, strings.Join(rep.Bad, "; "))
	}
	return nil
}

// metricValue returns the value of an unlabelled sample in a Prometheus
// text exposition, or -1 when absent.
func metricValue(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// lkgVersion reads the version of the gateway's last-known-good bundle.
func lkgVersion(st *harness.Stack) (string, error) {
	b, err := os.ReadFile(filepath.Join(st.GatewayState, "bundle.json"))
	if err != nil {
		return "", err
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

func corruptLKG(ctx context.Context, t *T) error {
	st, c1, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	lkg := filepath.Join(st.GatewayState, "bundle.json")
	cases := []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{name: "truncated", corrupt: func(b []byte) []byte { return b[:len(b)/2] }},
		{name: "tampered", corrupt: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"X-Config":"c1"`, `"X-Config":"cX"`, 1))
		}},
		{name: "not JSON", corrupt: func([]byte) []byte { return []byte("\x00\x01 not a bundle") }},
	}
	for i, tc := range cases {
		good, err := os.ReadFile(lkg)
		if err != nil {
			return fmt.Errorf("%s: reading the last-known-good: %w", tc.name, err)
		}
		bad := tc.corrupt(good)
		if string(bad) == string(good) {
			return fmt.Errorf("%s: corrupting changed nothing", tc.name)
		}
		if err := st.Agent.Stop(); err != nil {
			return err
		}
		st.Gateway.Kill9()
		if err := os.WriteFile(lkg, bad, 0o600); err != nil {
			return err
		}
		if err := st.StartGateway(ctx); err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		if err := st.Admin.Ready(ctx); !errors.Is(err, client.ErrNotReady) {
			return fmt.Errorf("%s: readyz: %v, want 503 (not ready)", tc.name, err)
		}
		if r := st.Get("/"); r.Code == http.StatusOK {
			return fmt.Errorf("%s: the data plane answered 200 from a corrupt bundle (%s)", tc.name, r)
		}
		gs, err := st.Admin.Status(ctx)
		if err != nil {
			return err
		}
		if gs.LastRejected == nil || gs.Version != "" {
			return fmt.Errorf("%s: gateway status version=%q lastRejected=%v; want none running and the file rejected", tc.name, gs.Version, gs.LastRejected)
		}
		aside, _ := filepath.Glob(lkg + ".corrupt-*")
		if len(aside) != i+1 {
			return fmt.Errorf("%s: %d files moved aside, want %d", tc.name, len(aside), i+1)
		}
		if _, err := os.Stat(lkg); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: bundle.json still in place: %v", tc.name, err)
		}
		t.Logf("%s: readyz 503, data plane not 200, reported as rejected, moved aside", tc.name)
		if err := st.StartAgent(ctx); err != nil {
			return err
		}
		if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		if err := st.Admin.Ready(ctx); err != nil {
			return fmt.Errorf("%s: readyz after healing: %w", tc.name, err)
		}
		if v, err := lkgVersion(st); err != nil || v != c1 {
			return fmt.Errorf("%s: bundle.json after healing: version %s, %v", tc.name, short(v), err)
		}
		t.Logf("%s: the agent healed it: c1 served, readyz 200, bundle.json rewritten", tc.name)
	}
	return nil
}

func staleSocket(ctx context.Context, t *T) error {
	st, c1, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	st.Gateway.Kill9()
	fi, err := os.Lstat(st.AdminSocket)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("after SIGKILL: admin socket file %v, %v; want a stale socket", fi, err)
	}
	if c, err := net.Dial("unix", st.AdminSocket); err == nil {
		c.Close()
		return errors.New("the stale socket still accepts connections")
	}
	t.Logf("SIGKILL left a stale socket file that refuses connections")
	if err := st.StartGateway(ctx); err != nil {
		return fmt.Errorf("restart on a stale socket: %w", err)
	}
	if fi, err = os.Lstat(st.AdminSocket); err != nil || fi.Mode().Perm() != 0o600 {
		return fmt.Errorf("admin socket after restart: %v, %v; want mode 0600", fi, err)
	}
	if r := st.Get("/"); !r.OK("c1") {
		return fmt.Errorf("after restart: %s", r)
	}
	if _, err := st.CLI(ctx, "sync"); err != nil {
		return err
	}
	if ok, _ := st.Converged(ctx, c1); !ok {
		return errors.New("agent not converged after `agent sync`")
	}
	t.Logf("restarted on it: mode 0600, c1 served, agent converged")

	if err := st.Gateway.Stop(); err != nil {
		return fmt.Errorf("stopping the gateway: %w", err)
	}
	const content = "not a socket\n"
	if err := os.WriteFile(st.AdminSocket, []byte(content), 0o600); err != nil {
		return err
	}
	p, err := harness.Start(t.dir, "gateway", append([]string{t.bins.Gateway}, st.GatewayArgs()...)...)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		p.Kill9()
		return errors.New("the gateway started on a regular file at its socket path")
	case <-ctx.Done():
		p.Kill9()
		return ctx.Err()
	}
	if p.Err() == nil {
		return errors.New("the gateway exited 0 with a regular file at its socket path")
	}
	if b, err := os.ReadFile(st.AdminSocket); err != nil || string(b) != content {
		return fmt.Errorf("the regular file at the socket path was changed: %q, %v", b, err)
	}
	t.Logf("a regular file at the socket path: gateway exited (%v), file left intact", p.Err())
	if err := os.Remove(st.AdminSocket); err != nil {
		return err
	}
	if err := st.StartGateway(ctx); err != nil {
		return err
	}
	return harness.WaitFor(ctx, 10*time.Second, "c1 served again", func() (bool, error) { return st.Get("/").OK("c1"), nil })
}

func webhookPollRace(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{PollInterval: "1s"})
	if err != nil {
		return err
	}
	const commits, hooks = 15, 5
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		hookErr error
		label   string
	)
	for i := range commits {
		label = "g" + strconv.Itoa(i)
		if _, err := t.commit(st, label); err != nil {
			return err
		}
		for range hooks {
			wg.Go(func() {
				if _, err := st.Webhook(ctx); err != nil {
					mu.Lock()
					hookErr = errors.Join(hookErr, err)
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
	}
	wg.Wait()
	if hookErr != nil {
		return hookErr
	}
	head, err := st.Repo.Head()
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, head, label); err != nil {
		return err
	}
	check := func() (int, error) {
		hist, err := st.History(ctx)
		if err != nil {
			return 0, err
		}
		applied := map[string]int{}
		for _, e := range hist {
			switch {
			case e.Result == "failed":
				return 0, fmt.Errorf("attempt on %s failed: %s", short(e.SHA), e.Error)
			case e.Result == "applied" && e.Trigger != "heal":
				applied[e.SHA]++
			}
		}
		for sha, n := range applied {
			if n > 1 {
				return 0, fmt.Errorf("commit %s recorded as applied %d times", short(sha), n)
			}
		}
		if applied[head] != 1 {
			return 0, fmt.Errorf("head %s recorded as applied %d times, want 1", short(head), applied[head])
		}
		return len(applied), nil
	}
	n, err := check()
	if err != nil {
		return err
	}
	s0, err := st.AgentStatus(ctx)
	if err != nil {
		return err
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := check(); err != nil {
		return fmt.Errorf("after two more polls: %w", err)
	}
	s1, err := st.AgentStatus(ctx)
	if err != nil {
		return err
	}
	if s1.LastApplied != head || s1.Syncs <= s0.Syncs {
		return fmt.Errorf("after two more polls: lastApplied %s, syncs %d -> %d", short(s1.LastApplied), s0.Syncs, s1.Syncs)
	}
	t.Logf("%d webhooks for %d commits: %d syncs, %d distinct commits applied once each, head %s applied once; %d more polls applied nothing",
		commits*hooks, commits, s0.Syncs, n, short(head), s1.Syncs-s0.Syncs)
	return nil
}

func scriptedScenario(ctx context.Context, t *T) error {
	st, c1, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	c2, err := t.push(ctx, st, "c2")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c2, "c2"); err != nil {
		return err
	}
	t.Logf("commit + webhook: c2 (%s) served", short(c2))

	bad, err := st.Repo.WriteCommit("config.yaml", harness.InvalidYAML(t.upstream), "typo")
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	var last harness.Entry
	if err := harness.WaitFor(ctx, 15*time.Second, "the invalid commit to be rejected", func() (bool, error) {
		h, err := st.History(ctx)
		if err != nil || len(h) == 0 {
			return false, nil
		}
		last = h[0]
		return last.SHA == bad, nil
	}); err != nil {
		return err
	}
	if last.Result != "rejected" || len(last.Diagnostics) == 0 || last.Diagnostics[0].File != "config.yaml" || last.Diagnostics[0].Line == 0 {
		return fmt.Errorf("invalid commit recorded as %q with diagnostics %+v; want rejected at config.yaml:line", last.Result, last.Diagnostics)
	}
	d := last.Diagnostics[0]
	if err := expectServing(st, "c2", 10); err != nil {
		return fmt.Errorf("after the invalid commit: %w", err)
	}
	t.Logf("invalid commit rejected (%s:%d:%d: %s: %s); c2 still served", d.File, d.Line, d.Column, d.Path, d.Message)

	if _, err := st.CLI(ctx, "rollback", "--reason", "e2e"); err != nil {
		return err
	}
	if err := expectServing(st, "c1", 10); err != nil {
		return fmt.Errorf("after rollback: %w", err)
	}
	status, err := st.AgentStatus(ctx)
	if err != nil {
		return err
	}
	if status.Mode != "pinned" || status.Pin == nil || status.Pin.SHA != c1 || status.Pin.From != c2 || !slices.Contains(status.Bad, c2) {
		return fmt.Errorf("after rollback: mode %q pin %+v bad %v; want pinned to c1 from c2, c2 bad", status.Mode, status.Pin, status.Bad)
	}
	t.Logf("`agent rollback`: c1 served, pinned to %s, c2 marked bad", short(c1))

	c4, err := t.push(ctx, st, "c4")
	if err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c4, "c4"); err != nil {
		return err
	}
	if status, err = st.AgentStatus(ctx); err != nil || status.Mode != "tracking" {
		return fmt.Errorf("after a new commit: mode %q, %v; want tracking", status.Mode, err)
	}
	t.Logf("new commit c4: pin lifted, c4 served")

	st.Gateway.Kill9()
	if err := st.StartGateway(ctx); err != nil {
		return err
	}
	if r := st.Get("/"); !r.OK("c4") {
		return fmt.Errorf("restarted gateway's first request: %s, want c4", r)
	}
	if _, err := st.CLI(ctx, "sync"); err != nil {
		return err
	}
	if ok, _ := st.Converged(ctx, c4); !ok {
		return errors.New("agent not converged on c4 after `agent sync`")
	}
	t.Logf("SIGKILL of the gateway: restart serves c4 at once; `agent sync` shows it converged")
	return nil
}

// handEdit pushes a copy of the gateway's running bundle whose catch-all
// route answers with X-Config: label, as an operator editing the gateway
// by hand would, so that the agent's next sync heals it.
func handEdit(ctx context.Context, st *harness.Stack, label string) error {
	b, etag, err := st.Admin.Get(ctx)
	if err != nil {
		return err
	}
	cfg := b.Config
	r := cfg.Routes["main"]
	r.ResponseHeaders = &schemas.HeaderOps{Set: map[string]string{"X-Config": label}}
	cfg.Routes["main"] = r
	nb, err := schemas.NewBundle("hand-"+label, b.Source, cfg, time.Now())
	if err != nil {
		return err
	}
	_, err = st.Admin.Put(ctx, nb, strings.Trim(etag, `"`))
	return err
}

// historyOnFullDisk fills the agent's state dir, then makes the agent
// record heal entries (the gateway edited by hand, then `agent sync`)
// until appending one fails for want of space. A failed append must not
// leave a fragment that corrupts the next, successful one.
func historyOnFullDisk(ctx context.Context, t *T) error {
	if os.Geteuid() != 0 {
		return Skip("mounting a tmpfs needs root")
	}
	agentFS := filepath.Join(t.dir, "agent-fs")
	if err := mountTmpfs(t, agentFS, "8m"); err != nil {
		return err
	}
	st, c1, err := t.Stack(ctx, harness.Options{AgentState: filepath.Join(agentFS, "state")})
	if err != nil {
		return err
	}
	free, err := fill(agentFS)
	if err != nil {
		return err
	}
	failedAt := 0
	for i := 1; i <= 60 && failedAt == 0; i++ {
		if err := handEdit(ctx, st, "hand"+strconv.Itoa(i)); err != nil {
			return err
		}
		_, _ = st.CLI(ctx, "sync")
		s, err := st.AgentStatus(ctx)
		if err != nil {
			return err
		}
		if strings.Contains(s.LastError, "no space left on device") {
			failedAt = i
			t.Logf("heal %d: %s", i, s.LastError)
		}
	}
	if failedAt == 0 {
		return errors.New("no history append failed in 60 heals with the disk full")
	}
	if err := free(); err != nil {
		return err
	}
	if err := handEdit(ctx, st, "hand-last"); err != nil {
		return err
	}
	if _, err := st.CLI(ctx, "sync"); err != nil {
		return err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return err
	}
	rep, err := harness.CheckHistoryFile(filepath.Join(st.AgentState, "history.jsonl"))
	if err != nil {
		return err
	}
	if len(rep.Bad) > 0 {
		return fmt.Errorf("history after a failed append and a successful one: %s", strings.Join(rep.Bad, "; "))
	}
	t.Logf("append %d failed for want of space; after space came back the history file is clean (%d lines)", failedAt, rep.Lines)
	return nil
}

// killBetweenPushAndRecord reproduces, deterministically, an agent killed
// after the gateway applied a commit but before the agent recorded it: the
// agent is stopped, a commit is made and its bundle (from `agent bundle`)
// is pushed to the gateway, as the killed agent had done; then the agent
// starts. It must record the head as applied, and a second restart must
// not push an older config over it.
func killBetweenPushAndRecord(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	if err := st.Agent.Stop(); err != nil {
		return err
	}
	c2, err := t.commit(st, "c2")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, t.bins.Agent, "bundle", st.Repo.Dir, "--version", c2).Output()
	if err != nil {
		return fmt.Errorf("agent bundle: %w", err)
	}
	var b schemas.Bundle
	if err := json.Unmarshal(out, &b); err != nil {
		return fmt.Errorf("decoding `agent bundle`: %w", err)
	}
	if _, err := st.Admin.Put(ctx, &b, ""); err != nil {
		return err
	}
	if err := st.StartAgent(ctx); err != nil {
		return err
	}
	var s harness.AgentStatus
	if err := harness.WaitFor(ctx, 15*time.Second, "the agent to attempt c2", func() (bool, error) {
		s, err = st.AgentStatus(ctx)
		return err == nil && s.LastAttempted == c2, nil
	}); err != nil {
		return err
	}
	t.Logf("gateway at c2 before the agent recorded it; agent: last result %q, lastApplied %s", s.LastResult, short(s.LastApplied))
	if err := st.Agent.Stop(); err != nil {
		return err
	}
	if err := st.StartAgent(ctx); err != nil {
		return err
	}
	if _, err := st.CLI(ctx, "sync"); err != nil {
		return err
	}
	r := st.Get("/")
	s, _ = st.AgentStatus(ctx)
	if s.LastApplied != c2 || !r.OK("c2") {
		return fmt.Errorf("after a restart: lastApplied %s, gateway answers %s; want c2 (%s) applied and served", short(s.LastApplied), r, short(c2))
	}
	t.Logf("c2 recorded as applied and still served after another restart")
	return nil
}
