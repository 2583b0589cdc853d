package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// maxTreeDepth bounds how deep readFiles descends below the config path.
const maxTreeDepth = 32

// maxTreeEntries bounds the entries readFiles visits below the config path,
// a directory's counted each time the directory is reached. Git trees are
// content-addressed, so a tree may name one subtree many times: a commit
// of a few kilobytes (sixteen entries naming the same subtree, eight
// levels deep) makes a walk of four billion directories, which a pull
// request from anyone's fork would send the agent into.
const maxTreeEntries = 100_000

// maxPathBytes bounds the path of an entry below the config path, and
// maxRefusals the problems a walk records (the others are counted): with
// long directory names nested deep and thousands of entries at the bottom,
// the refused paths of a commit of 94 KB took 2.7 GB to hold, each one
// also an annotation.
const (
	maxPathBytes = 1024
	maxRefusals  = 100
)

// errWalkStopped ends a walk that reached maxTreeEntries.
var errWalkStopped = errors.New("walk stopped")

// configExt reports whether name is a config file the loader reads.
func configExt(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json", ".cue":
		return true
	}
	return false
}

// readFiles returns the config files (*.yaml, *.yml, *.json, *.cue) found
// under dir in the tree of commit, read from repo's object store without a
// worktree. dir is slash-separated and relative to the repository root; ""
// or "." is the root. Paths in the result are relative to dir, sorted.
// Entries whose name starts with "." (such as .github) are skipped.
//
// Problems a user must fix in the repository come back as a
// *schemas.InvalidError naming each file (relative to dir; a problem with dir
// itself has no File): a missing config path, a symlink or
// submodule anywhere under dir, a file over lim.MaxFileBytes, a total over
// lim.MaxTotalBytes, or more than maxTreeEntries entries. Zero limits take
// load.DefaultLimits. Other errors (a missing object, a corrupt store, ctx
// ended) are wrapped and returned as they are.
//
// readFiles does not lock repo; the caller serializes access to it.
func readFiles(ctx context.Context, repo *git.Repository, commit plumbing.Hash, dir string, lim load.Limits) ([]load.File, error) {
	return readFilesUpTo(ctx, repo, commit, dir, lim, maxTreeEntries)
}

// readFilesUpTo is readFiles visiting at most maxEntries entries.
func readFilesUpTo(ctx context.Context, repo *git.Repository, commit plumbing.Hash, dir string, lim load.Limits, maxEntries int) ([]load.File, error) {
	if lim.MaxFileBytes <= 0 {
		lim.MaxFileBytes = load.DefaultLimits.MaxFileBytes
	}
	if lim.MaxTotalBytes <= 0 {
		lim.MaxTotalBytes = load.DefaultLimits.MaxTotalBytes
	}
	c, err := repo.CommitObject(commit)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", commit, err)
	}
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading tree of commit %s: %w", commit, err)
	}
	dir = strings.Trim(path.Clean("/"+dir), "/")
	tree := root
	if dir != "" {
		ent, err := root.FindEntry(dir)
		switch {
		case errors.Is(err, object.ErrDirectoryNotFound), errors.Is(err, object.ErrEntryNotFound):
			return nil, &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{
				Message: fmt.Sprintf("config path %q does not exist at commit %s", dir, short(commit)),
			}}}
		case err != nil:
			return nil, fmt.Errorf("finding config path %q at commit %s: %w", dir, commit, err)
		case ent.Mode != filemode.Dir:
			return nil, &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{
				Message: fmt.Sprintf("config path %q is a %s, not a directory", dir, modeName(ent.Mode)),
			}}}
		}
		if tree, err = repo.TreeObject(ent.Hash); err != nil {
			return nil, fmt.Errorf("reading config path %q at commit %s: %w", dir, commit, err)
		}
	}
	r := reader{ctx: ctx, repo: repo, lim: lim, maxEntries: maxEntries}
	err = r.walk(tree, "", 0)
	stopped := errors.Is(err, errWalkStopped)
	if err != nil && !stopped {
		return nil, err
	}
	if r.unrecorded > 0 {
		r.diags = append(r.diags, schemas.Diagnostic{Message: fmt.Sprintf("and %d more problems in the config path, not listed", r.unrecorded)})
	}
	if stopped {
		r.diags = append(r.diags, schemas.Diagnostic{Message: fmt.Sprintf("the config path holds more than %d files and directories (a directory counted each time it is reached: trees that name one subtree many times count each time)", r.maxEntries)})
	}
	if len(r.diags) > 0 {
		return nil, &schemas.InvalidError{Diagnostics: r.diags}
	}
	sort.Slice(r.files, func(i, j int) bool { return r.files[i].Path < r.files[j].Path })
	return r.files, nil
}

// clipPath returns p cut to its first 128 bytes, for a message.
func clipPath(p string) string {
	if len(p) <= 128 {
		return p
	}
	return strings.ToValidUTF8(p[:128], "") + "…"
}

type reader struct {
	ctx        context.Context
	repo       *git.Repository
	lim        load.Limits
	total      int64
	entries    int // visited, against maxEntries
	maxEntries int
	files      []load.File
	diags      []schemas.Diagnostic
	unrecorded int // refusals past maxRefusals
}

func (r *reader) refuse(p, format string, args ...any) {
	if len(r.diags) == maxRefusals {
		r.unrecorded++
		return
	}
	r.diags = append(r.diags, schemas.Diagnostic{File: p, Message: fmt.Sprintf(format, args...)})
}

func (r *reader) walk(t *object.Tree, base string, depth int) error {
	if depth > maxTreeDepth {
		r.refuse(base, "directories nest deeper than %d levels", maxTreeDepth)
		return nil
	}
	for _, e := range t.Entries {
		if r.entries++; r.entries > r.maxEntries {
			return errWalkStopped // reported last, never among the unrecorded
		}
		if r.entries%1024 == 0 {
			if err := r.ctx.Err(); err != nil {
				return fmt.Errorf("reading the config path: %w", err)
			}
		}
		if strings.HasPrefix(e.Name, ".") {
			continue
		}
		if len(base)+1+len(e.Name) > maxPathBytes {
			r.refuse(clipPath(base), "a path below the config path is longer than %d bytes", maxPathBytes)
			continue
		}
		p := path.Join(base, e.Name)
		switch e.Mode {
		case filemode.Dir:
			sub, err := r.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("reading directory %q: %w", p, err)
			}
			if err := r.walk(sub, p, depth+1); err != nil {
				return err
			}
		case filemode.Symlink:
			r.refuse(p, "symlinks are not allowed in the config path; commit the file itself")
		case filemode.Submodule:
			r.refuse(p, "submodules are not allowed in the config path")
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			if !configExt(e.Name) {
				continue
			}
			if err := r.readBlob(p, e.Hash); err != nil {
				return err
			}
		default:
			r.refuse(p, "unsupported tree entry mode %s", e.Mode)
		}
	}
	return nil
}

func (r *reader) readBlob(p string, h plumbing.Hash) error {
	b, err := r.repo.BlobObject(h)
	if err != nil {
		return fmt.Errorf("reading file %q: %w", p, err)
	}
	if b.Size > r.lim.MaxFileBytes {
		r.refuse(p, "file is %d bytes, over the limit of %d bytes", b.Size, r.lim.MaxFileBytes)
		return nil
	}
	if r.total+b.Size > r.lim.MaxTotalBytes {
		r.refuse(p, "config files total more than the limit of %d bytes", r.lim.MaxTotalBytes)
		return nil
	}
	rd, err := b.Reader()
	if err != nil {
		return fmt.Errorf("opening file %q: %w", p, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, r.lim.MaxFileBytes+1))
	if err != nil {
		return fmt.Errorf("reading file %q: %w", p, err)
	}
	r.total += int64(len(data))
	r.files = append(r.files, load.File{Path: p, Data: data})
	return nil
}

func modeName(m filemode.FileMode) string {
	switch m {
	case filemode.Symlink:
		return "symlink"
	case filemode.Submodule:
		return "submodule"
	default:
		return "file"
	}
}

func short(h plumbing.Hash) string { return h.String()[:12] }
