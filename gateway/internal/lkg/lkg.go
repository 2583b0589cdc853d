package lkg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/atomicfile"
)

// FileName is the name of the bundle file inside the state directory.
const FileName = "bundle.json"

// maxFileBytes caps what Load reads; a larger file is corrupt.
const maxFileBytes = 256 << 20

// ErrNotFound is returned by Load when no bundle was saved yet.
var ErrNotFound = errors.New("no last-known-good bundle")

// CorruptError is returned by Load for a file that exists but cannot be
// used: unreadable, not a bundle, or failing its digest check.
type CorruptError struct {
	// Path of the file.
	Path string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("last-known-good bundle %s is unusable: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// Store reads and writes the bundle file of one state directory. Its methods
// are safe for concurrent use only in that writes are atomic; callers
// serialize Save (the admin server holds its apply lock).
type Store struct {
	dir string
}

// Open returns the store of dir, creating dir with mode 0700 when missing.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Path returns the path of the bundle file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// Save writes b atomically with mode 0600: a reader sees the old file or the
// new one, never a part, and the new one survives a crash once Save returns.
func (s *Store) Save(b *schemas.Bundle) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encoding last-known-good bundle: %w", err)
	}
	if err := atomicfile.Write(s.Path(), data, 0o600); err != nil {
		return fmt.Errorf("saving last-known-good bundle: %w", err)
	}
	return nil
}

// Load reads, decodes and verifies the saved bundle. It returns ErrNotFound
// when there is none and a *CorruptError when the file cannot be used.
func (s *Store) Load() (*schemas.Bundle, error) {
	path := s.Path()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, &CorruptError{Path: path, Err: fmt.Errorf("reading: %w", err)}
	}
	if len(data) > maxFileBytes {
		return nil, &CorruptError{Path: path, Err: fmt.Errorf("larger than %d bytes", maxFileBytes)}
	}
	b, err := Decode(data)
	if err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	return b, nil
}

// Decode parses a bundle strictly (unknown fields and trailing data are
// errors) and verifies its apiVersion, version and digest.
func Decode(data []byte) (*schemas.Bundle, error) {
	b, err := schemas.DecodeBundle(data)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(); err != nil {
		return nil, fmt.Errorf("verifying bundle: %w", err)
	}
	return b, nil
}

// Quarantine renames the bundle file aside to "bundle.json.corrupt-<time>"
// so that it is kept for inspection but never loaded again, and returns the
// new path.
func (s *Store) Quarantine(now time.Time) (string, error) {
	to := s.Path() + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(s.Path(), to); err != nil {
		return "", fmt.Errorf("moving unusable last-known-good bundle aside: %w", err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return "", fmt.Errorf("moving unusable last-known-good bundle aside: %w", err)
	}
	return to, nil
}
