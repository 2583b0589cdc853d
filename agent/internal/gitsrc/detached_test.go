package gitsrc

import (
	"context"
	"testing"

	"github.com/gitgate/gitgate/schemas/load"
)

// TestDetachedHeadRemote tracks main of a local repository whose HEAD is
// detached, as a CI checkout or a `git checkout <sha>` leaves it: the head
// check and the fetch read main, whatever HEAD points at.
func TestDetachedHeadRemote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// detach leaves work's HEAD detached and returns main's tip.
		detach func(t *testing.T, work, first, second string) string
	}{
		{name: "detached at main's tip", detach: func(t *testing.T, work, _, second string) string {
			run(t, work, "checkout", "-q", "--detach")
			return second
		}},
		{name: "detached at an older commit", detach: func(t *testing.T, work, first, second string) string {
			run(t, work, "checkout", "-q", "--detach", first)
			return second
		}},
		{name: "detached with a commit main lacks", detach: func(t *testing.T, work, _, second string) string {
			run(t, work, "checkout", "-q", "--detach")
			commitFiles(t, work, "off branch", map[string]string{"cfg/a.yaml": "a: 3\n"})
			return second
		}},
		{name: "main moves after the detach", detach: func(t *testing.T, work, first, _ string) string {
			run(t, work, "checkout", "-q", "--detach", first)
			tip := commitOnBranch(t, work, "main", "third")
			return tip
		}},
	}
	for _, tc := range tests {
		for _, scheme := range []struct{ name, prefix string }{{"local path", ""}, {"file URL", "file://"}} {
			t.Run(tc.name+"/"+scheme.name, func(t *testing.T) {
				t.Parallel()
				work := newRepo(t)
				first := commitFiles(t, work, "first", map[string]string{"cfg/a.yaml": "a: 1\n"})
				second := commitFiles(t, work, "second", map[string]string{"cfg/a.yaml": "a: 2\n"})
				want := tc.detach(t, work, first, second)
				s := openSource(t, scheme.prefix+work, nil)
				head, err := s.Head(context.Background())
				if err != nil || head != want {
					t.Fatalf("Head: %s, %v; want %s", head, err, want)
				}
				head, fetched, err := s.Update(context.Background())
				if err != nil || head != want || !fetched {
					t.Fatalf("Update: %s fetched %v, %v; want %s fetched", head, fetched, err, want)
				}
				if files, err := s.Files(context.Background(), head, "cfg", load.Limits{}); err != nil || len(files) != 1 {
					t.Fatalf("Files after the fetch: %v, %v", files, err)
				}
			})
		}
	}
}

// commitOnBranch commits on branch without touching HEAD (plumbing: a
// detached work tree stays detached) and returns the commit.
func commitOnBranch(t *testing.T, work, branch, msg string) string {
	t.Helper()
	tree := run(t, work, "rev-parse", branch+"^{tree}")
	c := run(t, work, "commit-tree", tree, "-p", branch, "-m", msg)
	run(t, work, "update-ref", "refs/heads/"+branch, c)
	return c
}
