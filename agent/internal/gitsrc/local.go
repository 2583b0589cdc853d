package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgate/gitgate/schemas/load"
)

// Local is a Git repository on this machine read in place, without a clone
// or the network: `agent diff` compares its revisions. It is safe for
// concurrent use.
type Local struct {
	mu   sync.Mutex
	repo *git.Repository
	root string
}

// OpenLocal opens the repository at dir, or the one around the current
// directory when dir is empty.
func OpenLocal(dir string) (*Local, error) {
	opts := &git.PlainOpenOptions{DetectDotGit: dir == ""}
	if dir == "" {
		dir = "."
	}
	repo, err := git.PlainOpenWithOptions(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("opening Git repository %s: %w", dir, err)
	}
	root := dir
	if wt, err := repo.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	return &Local{repo: repo, root: root}, nil
}

// Root is the repository's worktree root (dir itself for a bare one).
func (l *Local) Root() string { return l.root }

// Resolve turns any Git revision (HEAD~1, a branch, a tag, a SHA or a
// unique SHA prefix) into the full SHA of its commit.
func (l *Local) Resolve(rev string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, err := l.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return "", fmt.Errorf("resolving revision %q: %w", rev, err)
	}
	if _, err := l.repo.CommitObject(*h); err != nil {
		return "", fmt.Errorf("reading commit %s of %q: %w", h, rev, err)
	}
	return h.String(), nil
}

// HasDir reports whether dir (slash-separated, relative to the root; ""
// is the root) exists at commit rev.
func (l *Local) HasDir(rev, dir string) (bool, error) {
	h, err := hashOf(rev)
	if err != nil {
		return false, err
	}
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir == "" {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.repo.CommitObject(h)
	if err != nil {
		return false, fmt.Errorf("reading commit %s: %w", h, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return false, fmt.Errorf("reading tree of %s: %w", short(h), err)
	}
	_, err = tree.FindEntry(dir)
	switch {
	case errors.Is(err, object.ErrDirectoryNotFound), errors.Is(err, object.ErrEntryNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("finding config path %q at %s: %w", dir, short(h), err)
	}
	return true, nil
}

// Files reads the config files under dir at commit rev (a full SHA), as
// Source.Files does.
func (l *Local) Files(ctx context.Context, rev, dir string, lim load.Limits) ([]load.File, error) {
	h, err := hashOf(rev)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return readFiles(ctx, l.repo, h, dir, lim)
}
