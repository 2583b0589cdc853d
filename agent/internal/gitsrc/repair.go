package gitsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"

	"github.com/gitgate/gitgate/schemas/atomicfile"
)

// maxRefFile bounds what is read of one ref file: a valid one is a hash or
// a symbolic ref and a newline.
const maxRefFile = 4 << 10

// repairStorage undoes what a process killed in the middle of a go-git
// write leaves in the bare repository at dir, before go-git opens it. go-git
// writes ref files, HEAD and the config in place (truncate, then write) and
// a pack's index before renaming the pack in, so SIGKILL or a power cut at
// the wrong moment leaves an empty or partial file; every later fetch then
// fails on it ("ref file is empty") and the agent would not sync again.
//
// Everything it removes is derived and written again: the refs are
// remote-tracking branches and mark tags that the next fetch restores, an
// index without its pack belongs to a pack that never arrived, temp files
// are writes that never finished, and Open rewrites the config. HEAD is
// rewritten, not removed, because go-git takes a storage without one for
// no repository. It returns one line per repair, for the agent's log.
//
// It needs the storage to itself (a temp file of a fetch in flight would
// go): the agent opens its source only once it holds the state
// directory's lock, and the Source serializes Update.
func repairStorage(dir string) ([]string, error) {
	var repaired []string
	note := func(format string, args ...any) { repaired = append(repaired, fmt.Sprintf(format, args...)) }

	if err := removeTempFiles(dir, "an interrupted write's temp file", note); err != nil {
		return repaired, err
	}
	if err := repairPacks(filepath.Join(dir, "objects", "pack"), note); err != nil {
		return repaired, err
	}
	err := filepath.WalkDir(filepath.Join(dir, "refs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ok, why := refFileValid(path); !ok {
			return removeNoted(path, why, note)
		}
		return nil
	})
	if err != nil {
		return repaired, fmt.Errorf("repairing git storage %s: %w", dir, err)
	}
	head := filepath.Join(dir, "HEAD")
	if ok, why := refFileValid(head); !ok && (statErr(head) == nil || hasObjects(dir)) {
		if err := atomicfile.Write(head, []byte("ref: refs/heads/master\n"), 0o600); err != nil {
			return repaired, fmt.Errorf("repairing git storage %s: %w", dir, err)
		}
		note("rewrote HEAD (%s)", why)
	}
	cfg := filepath.Join(dir, "config")
	if b, err := readBounded(cfg, 1<<20); err == nil {
		if _, perr := config.ReadConfig(bytes.NewReader(b)); perr != nil {
			if err := removeNoted(cfg, "unreadable: "+perr.Error(), note); err != nil {
				return repaired, err
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		if err := removeNoted(cfg, err.Error(), note); err != nil {
			return repaired, err
		}
	}
	return repaired, nil
}

// removeTempFiles removes the temp files of writes that never finished,
// noting each with why: go-git's pack and object writers' in objects/pack
// (a fetch that failed leaves its pack's: go-git does not remove it), its
// packed-refs rewrite's, and atomicfile's (".<name>.tmp-*") beside HEAD and
// the config. Like repairStorage, it needs the storage to itself.
func removeTempFiles(dir, why string, note func(string, ...any)) error {
	for _, d := range []struct {
		dir      string
		prefixes []string
	}{
		{filepath.Join(dir, "objects", "pack"), []string{"tmp_pack_", "tmp_obj_"}},
		{dir, []string{"._packed-refs", ".config.tmp-", ".HEAD.tmp-"}},
	} {
		entries, err := os.ReadDir(d.dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing temp files of git storage %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !hasAnyPrefix(e.Name(), d.prefixes) {
				continue
			}
			if err := removeNoted(filepath.Join(d.dir, e.Name()), why, note); err != nil {
				return err
			}
		}
	}
	return nil
}

// repairPacks removes, in dir (objects/pack), an index whose pack is
// missing (go-git writes the index, then renames the pack in: an index
// alone is a fetch that never finished, and would make the same pack's
// next arrival keep the torn index) and a pack whose index does not
// decode, with that index: its objects are fetched again.
func repairPacks(dir string, note func(string, ...any)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("repairing packs in %s: %w", dir, err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".idx")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		idx := filepath.Join(dir, e.Name())
		if !have[base+".pack"] {
			if err := removeNoted(idx, "an index without its pack", note); err != nil {
				return err
			}
			continue
		}
		if err := decodeIndex(idx); err != nil {
			if err := removeNoted(idx, "an index that does not decode: "+err.Error(), note); err != nil {
				return err
			}
			if err := removeNoted(filepath.Join(dir, base+".pack"), "the pack of that index", note); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeIndex reads the pack index at path whole, which checks its
// trailing checksum.
func decodeIndex(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return idxfile.NewDecoder(f).Decode(idxfile.NewMemoryIndex())
}

// dropDanglingRefs removes the refs whose hash names an object the store
// does not have (a ref written before its pack reached the disk, then a
// power cut): go-git would offer it to the remote as a commit it has.
func dropDanglingRefs(repo *git.Repository, note func(string, ...any)) error {
	refs, err := repo.Storer.IterReferences()
	if err != nil {
		return err
	}
	var dangling []plumbing.ReferenceName
	err = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && repo.Storer.HasEncodedObject(r.Hash()) != nil {
			dangling = append(dangling, r.Name())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range dangling {
		if err := repo.Storer.RemoveReference(n); err != nil {
			return fmt.Errorf("removing %s: %w", n, err)
		}
		note("removed %s (names an object not in the store)", n)
	}
	return nil
}

// refFileValid reports whether the file at path holds one ref: a full hex
// hash (plumbing.IsHash) or "ref: " and a name git accepts
// (ReferenceName.Validate), with an optional newline; otherwise why not.
func refFileValid(path string) (bool, string) {
	b, err := readBounded(path, maxRefFile)
	if err != nil {
		return false, err.Error()
	}
	line := strings.TrimSuffix(string(b), "\n")
	if line == "" {
		return false, "empty"
	}
	if name, ok := strings.CutPrefix(line, "ref: "); ok && plumbing.ReferenceName(name).Validate() == nil || plumbing.IsHash(line) {
		return true, ""
	}
	return false, fmt.Sprintf("not a ref: %q", truncate(line, 80))
}

// readBounded reads up to limit bytes of path; a longer file is an error.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return b, nil
}

// removeNoted removes path and notes why.
func removeNoted(path, why string, note func(string, ...any)) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s (%s): %w", path, why, err)
	}
	note("removed %s (%s)", filepath.Base(path), why)
	return nil
}

// statErr is Lstat's error for path.
func statErr(path string) error {
	_, err := os.Lstat(path)
	return err
}

// hasObjects reports whether dir holds an object store, i.e. is a
// repository that an init once began, not an empty directory.
func hasObjects(dir string) bool {
	return statErr(filepath.Join(dir, "objects")) == nil
}

// hasAnyPrefix reports whether name starts with one of prefixes.
func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// truncate cuts s to n bytes for a message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
