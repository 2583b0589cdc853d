package gitsrc

import (
	"fmt"
	"io/fs"
	"path/filepath"
)

// ResetOver empties the clone when its storage holds more than max bytes,
// and reports whether it did: the next fetch clones again. It is for a
// clone that is a cache and nothing else, such as the one that pull
// requests are checked in, whose objects come from anyone's fork: go-git
// never drops an object, so such a clone grows by every head fetched into
// it (up to Options.MaxFetchBytes each) until the disk is full. Never use
// it on the clone that rollbacks read old commits from.
func (s *Source) ResetOver(max int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.opts.StorageDir
	size, err := diskUsage(dir)
	if err != nil {
		return false, fmt.Errorf("measuring git storage %s: %w", dir, err)
	}
	if size <= max {
		return false, nil
	}
	if err := emptyStorage(dir); err != nil {
		return false, err
	}
	repo, err := s.openStorage()
	if err != nil {
		return true, err
	}
	s.repo, s.marks, s.listed = repo, nil, false
	return true, nil
}

// diskUsage is the size of the regular files under dir.
func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}
