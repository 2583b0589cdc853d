package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/agent/internal/source"
)

// marksRemote makes a bare repository with two commits on main and returns
// its path and the two SHAs. With receivePack, it may be pushed to over
// smart HTTP.
func marksRemote(t *testing.T, receivePack bool) (root, bare, one, two string) {
	t.Helper()
	work := newRepo(t)
	one = commitFiles(t, work, "one", map[string]string{"a.yaml": "a: 1\n"})
	two = commitFiles(t, work, "two", map[string]string{"a.yaml": "a: 2\n"})
	root = t.TempDir()
	bare = filepath.Join(root, "config.git")
	run(t, root, "clone", "-q", "--bare", work, bare)
	if receivePack {
		run(t, bare, "config", "http.receivepack", "true")
	}
	return root, bare, one, two
}

// gitBackend is git's smart HTTP backend serving the repositories under
// root, for a test to serve or wrap; it skips the test when git's backend
// is not installed.
func gitBackend(t *testing.T, root string) *cgi.Handler {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git-http-backend not installed")
	}
	return &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}}
}

// httpBackend serves root with git's smart HTTP backend.
func httpBackend(t *testing.T, root string) string {
	t.Helper()
	srv := httptest.NewServer(gitBackend(t, root))
	t.Cleanup(srv.Close)
	return srv.URL + "/config.git"
}

func pinWrite(rev, note, old string) []source.MarkWrite {
	return []source.MarkWrite{{Mark: source.Mark{Name: "pin", Revision: rev, Note: note}, Old: old, By: "Ada <ada@example.com>"}}
}

// TestMarksRoundTrip writes a pin and a bad mark from one clone and reads
// them from another in the head check's listing, over a local path and
// over smart HTTP with push enabled (what a fleet uses).
func TestMarksRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		http bool
	}{{"local path", false}, {"smart HTTP", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			root, bare, one, two := marksRemote(t, true)
			url := bare
			if tc.http {
				url = httpBackend(t, root)
			}
			a := openSource(t, url, func(o *Options) { o.PushMarks = true; o.PushToken = "push-only" })
			b := openSource(t, url, nil)
			if _, _, err := a.Update(ctx); err != nil {
				t.Fatal(err)
			}
			if ms, err := a.ReadMarks(ctx, ""); err != nil || len(ms) != 0 {
				t.Fatalf("marks before any write = %v, %v; want none", ms, err)
			}
			writes := append(pinWrite(one, "pinned\n\n{\"why\":\"bad two\"}", ""),
				source.MarkWrite{Mark: source.Mark{Name: "bad/" + two, Revision: two, Note: "bad"}})
			if err := a.WriteMarks(ctx, writes); err != nil {
				t.Fatalf("WriteMarks: %v", err)
			}
			// The refs are annotated tags under refs/tags/gitgate/main/.
			if typ := run(t, bare, "cat-file", "-t", "refs/tags/gitgate/main/pin"); typ != "tag" {
				t.Fatalf("pin ref is a %s, want an annotated tag", typ)
			}
			if got := run(t, bare, "rev-parse", "refs/tags/gitgate/main/pin^{commit}"); got != one {
				t.Fatalf("pin points at %s, want %s", got, one)
			}
			if got := run(t, bare, "rev-parse", "refs/heads/main"); got != two {
				t.Fatalf("the branch moved to %s; it must never be rewritten", got)
			}
			head, _, err := b.Update(ctx)
			if err != nil || head != two {
				t.Fatalf("b.Update = %s, %v", head, err)
			}
			ms, err := b.ReadMarks(ctx, "")
			if err != nil || len(ms) != 2 {
				t.Fatalf("b.ReadMarks = %+v, %v; want 2 marks", ms, err)
			}
			if ms[0].Name != "bad/"+two || ms[0].Revision != two || ms[1].Name != "pin" || ms[1].Revision != one || !strings.Contains(ms[1].Note, `"why":"bad two"`) {
				t.Fatalf("marks = %+v", ms)
			}
			pins, _ := b.ReadMarks(ctx, "pin")
			if len(pins) != 1 || pins[0].ID == "" || pins[0].ID == one {
				t.Fatalf("pin mark = %+v, want the tag object's ID", pins)
			}
			// b read the pin; a moves it; b's compare-and-swap on the old
			// value fails and changes nothing.
			if err := a.WriteMarks(ctx, pinWrite(two, "again", pins[0].ID)); err != nil {
				t.Fatalf("moving the pin: %v", err)
			}
			err = b.WriteMarks(ctx, pinWrite(one, "late", pins[0].ID))
			if !errors.Is(err, source.ErrMarksReadOnly) {
				t.Fatalf("b without push rights: err = %v, want ErrMarksReadOnly", err)
			}
			c := openSource(t, url, func(o *Options) { o.PushMarks = true })
			if _, _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			err = c.WriteMarks(ctx, pinWrite(one, "late", pins[0].ID))
			if !errors.Is(err, source.ErrMarkConflict) {
				t.Fatalf("stale compare-and-swap: err = %v, want ErrMarkConflict", err)
			}
			err = c.WriteMarks(ctx, pinWrite(one, "create", ""))
			if !errors.Is(err, source.ErrMarkConflict) {
				t.Fatalf("creating an existing pin: err = %v, want ErrMarkConflict", err)
			}
			cur, _ := c.ReadMarks(ctx, "pin")
			if err := c.WriteMarks(ctx, pinWrite("", "", cur[0].ID)); err != nil {
				t.Fatalf("deleting the pin: %v", err)
			}
			if out := run(t, bare, "tag", "-l", "gitgate/main/pin"); out != "" {
				t.Fatalf("pin still there after delete: %q", out)
			}
			// A loser of the delete sees the pin already gone.
			if err := a.WriteMarks(ctx, pinWrite("", "", cur[0].ID)); !errors.Is(err, source.ErrMarkConflict) {
				t.Fatalf("second delete: err = %v, want ErrMarkConflict", err)
			}
		})
	}
}

// TestMarksReadOnlyHost: a host that refuses pushes (http.receivepack
// off, as for a read-only token) makes WriteMarks fail with
// ErrMarksReadOnly, so the agent keeps its pin local.
func TestMarksReadOnlyHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root, _, one, _ := marksRemote(t, false)
	s := openSource(t, httpBackend(t, root), func(o *Options) { o.PushMarks = true; o.PushToken = "x" })
	if _, _, err := s.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteMarks(ctx, pinWrite(one, "n", "")); !errors.Is(err, source.ErrMarksReadOnly) {
		t.Fatalf("err = %v, want ErrMarksReadOnly", err)
	}
}

// TestMarksByHand: an operator's lightweight tag is a mark without a note.
func TestMarksByHand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, bare, one, _ := marksRemote(t, true)
	run(t, bare, "tag", "gitgate/main/pin", one)
	s := openSource(t, bare, nil)
	if _, _, err := s.Update(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err := s.ReadMarks(ctx, "pin")
	if err != nil || len(ms) != 1 || ms[0].Revision != one || ms[0].Note != "" {
		t.Fatalf("ReadMarks = %+v, %v", ms, err)
	}
}

// TestMarksIgnoreRefusedNames serves the repository through git's smart
// HTTP backend with extra refs under the marks' prefix in the advertisement,
// names that git's check-ref-format refuses and only a broken or hostile
// server sends ("../" back into the storage, a ".lock" name). The head
// check must ignore them: no mark read from them, no fetch asking for one
// whose object is not local (the server refuses it, and every sync would
// fail), no file written for them.
func TestMarksIgnoreRefusedNames(t *testing.T) {
	t.Parallel()
	names := []string{
		"refs/tags/gitgate/main/../../../config",
		"refs/tags/gitgate/main/pin.lock",
		"refs/tags/gitgate/main/bad/x..y",
	}
	for _, tc := range []struct {
		name   string
		object func(head string) string
	}{
		{"an object the server lacks", func(string) string { return strings.Repeat("ab", 20) }},
		{"the head's commit", func(head string) string { return head }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, _, _, two := marksRemote(t, false)
			git := gitBackend(t, root)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/info/refs") {
					git.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				git.ServeHTTP(rec, r)
				body := rec.Body.String()
				end := strings.LastIndex(body, "0000") // the advertisement's closing flush
				var extra strings.Builder
				for _, name := range names {
					line := tc.object(two) + " " + name + "\n"
					fmt.Fprintf(&extra, "%04x%s", len(line)+4, line)
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = io.WriteString(w, body[:end]+extra.String()+body[end:])
			}))
			t.Cleanup(srv.Close)
			store := filepath.Join(t.TempDir(), "git")
			s := openSource(t, srv.URL+"/config.git", func(o *Options) { o.StorageDir = store })
			head, _, err := s.Update(context.Background())
			if err != nil || head != two {
				t.Fatalf("Update = %s, %v; want %s", head, err, two)
			}
			if ms, err := s.ReadMarks(context.Background(), ""); err != nil || len(ms) != 0 {
				t.Fatalf("marks = %v, %v; want none", ms, err)
			}
			cfg, err := os.ReadFile(filepath.Join(store, "config"))
			if err != nil || !strings.Contains(string(cfg), "[remote \"origin\"]") {
				t.Fatalf("the storage's config changed: %q, %v", cfg, err)
			}
			err = filepath.WalkDir(store, func(path string, d os.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(path, ".lock") {
					t.Errorf("a file for a refused name: %s", path)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
