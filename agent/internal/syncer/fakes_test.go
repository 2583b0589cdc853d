package syncer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
	"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com",
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// configRepo is a work repository the test commits to.
type configRepo struct {
	t   *testing.T
	dir string
}

func newConfigRepo(t *testing.T) *configRepo {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	return &configRepo{t: t, dir: dir}
}

// commit writes files and commits them, returning the SHA.
func (r *configRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
		git(r.t, r.dir, "add", "--", p)
	}
	git(r.t, r.dir, "commit", "-q", "--allow-empty", "-m", msg)
	return git(r.t, r.dir, "rev-parse", "HEAD")
}

// validConfig routes / to one upstream whose target port is port.
func validConfig(port int) map[string]string {
	return map[string]string{"cfg/gw.yaml": "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:" + itoa(port) + "\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n"}
}

// invalidConfig has a weight that is not a number, on line 9.
func invalidConfig() map[string]string {
	return map[string]string{"cfg/gw.yaml": "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:9000\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: lots\n"}
}

func itoa(i int) string { return strconv.Itoa(i) }

type reported struct {
	applied chan string
	failed  chan string
}

func (r *reported) CommitApplied(_ context.Context, sha, _ string) { r.applied <- sha }
func (r *reported) CommitFailed(_ context.Context, sha string, _ []schemas.Diagnostic, _ error) {
	r.failed <- sha
}

// harness runs a Loop against a config repo and a fake gateway.
type harness struct {
	t     *testing.T
	repo  *configRepo
	gw    *admintest.Gateway
	state string
	loop  *Loop
	store *bundle.Store
	rep   *reported
	stop  func()
	// trustedKeys, when set, turns on signature verification.
	trustedKeys string
	// wrap, when set, wraps the admin client the loop talks through.
	wrap func(Gateway) Gateway
	// healInterval, when set, checks the gateway between sync passes.
	healInterval time.Duration
	// url, when set, is the repository the source reads instead of
	// repo.dir; pushMarks lets it write fleet pins there.
	url       string
	pushMarks bool
	// wrapSrc, when set, wraps the source the loop reads.
	wrapSrc func(*gitsrc.Source) source.Source
	// replica names the loop in the pins it writes.
	replica string
	// notifier, when set, hears the loop's events.
	notifier Notifier
}

// warningGateway passes calls to a real admin client and adds what a
// gateway that cannot save its last-known-good copy would say.
type warningGateway struct {
	Gateway
	mu      sync.Mutex
	warning string                // added to each successful Put
	lkg     *client.LastKnownGood // set as Status().LastKnownGood
}

func (w *warningGateway) set(warning string, lkg *client.LastKnownGood) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warning, w.lkg = warning, lkg
}

func (w *warningGateway) Put(ctx context.Context, b *schemas.Bundle, ifMatch string) (client.Applied, error) {
	a, err := w.Gateway.Put(ctx, b, ifMatch)
	if err == nil {
		w.mu.Lock()
		a.Warning = w.warning
		w.mu.Unlock()
	}
	return a, err
}

func (w *warningGateway) Status(ctx context.Context) (client.Status, error) {
	st, err := w.Gateway.Status(ctx)
	if err == nil {
		w.mu.Lock()
		st.LastKnownGood = w.lkg
		w.mu.Unlock()
	}
	return st, err
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, repo: newConfigRepo(t), gw: admintest.New(t), state: t.TempDir(),
		rep: &reported{applied: make(chan string, 100), failed: make(chan string, 100)}}
	return h
}

// start opens the store and source in the state dir and runs a Loop.
func (h *harness) start() {
	t := h.t
	url := h.repo.dir
	if h.url != "" {
		url = h.url
	}
	gsrc, err := gitsrc.Open(gitsrc.Options{URL: url, Branch: "main", StorageDir: filepath.Join(h.state, "git"), Timeout: 10 * time.Second, TrustedKeys: h.trustedKeys, PushMarks: h.pushMarks})
	if err != nil {
		t.Fatal(err)
	}
	var src source.Source = gsrc
	if h.wrapSrc != nil {
		src = h.wrapSrc(gsrc)
	}
	st, err := bundle.Open(h.state, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw := client.New(h.gw.Sock)
	var through Gateway = gw
	if h.wrap != nil {
		through = h.wrap(gw)
	}
	l, err := New(Options{Source: src, Store: st, Gateway: through, Path: "cfg", PollInterval: time.Hour,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Reporter: h.rep, Logger: zerolog.Nop(), HealInterval: h.healInterval, Replica: h.replica, Notifier: h.notifier})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	h.loop, h.store = l, st
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
		gw.Close()
		st.Close()
	}
	t.Cleanup(h.stop)
}

func (h *harness) sync() Status {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := h.loop.SyncAndWait(ctx, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) running() string { return h.gw.Version() }

// testKeyRing returns an armored public key ring of a fresh PGP key.
func testKeyRing(t *testing.T) string {
	t.Helper()
	e, err := openpgp.NewEntity("trusted", "", "trusted@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}
