package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/atomicfile"
)

// Result is the outcome of one sync attempt.
type Result string

// Results recorded in the history.
const (
	// ResultApplied: the gateway now serves the commit.
	ResultApplied Result = "applied"
	// ResultRejected: the commit failed validation (or the gateway refused
	// it with 422); the running config stays.
	ResultRejected Result = "rejected"
	// ResultNoop: the commit's config digest equals the one running.
	ResultNoop Result = "no-op"
	// ResultRollback: an operator rolled back to the commit.
	ResultRollback Result = "rollback"
	// ResultSkipped: the commit was validated while pinned and not applied.
	ResultSkipped Result = "skipped"
	// ResultFailed: a transient failure (Git or gateway unreachable).
	ResultFailed Result = "failed"
)

// Entry is one history line.
type Entry struct {
	Time        time.Time            `json:"time"`
	SHA         string               `json:"sha"`
	Author      string               `json:"author,omitempty"`
	Subject     string               `json:"subject,omitempty"`
	Result      Result               `json:"result"`
	Trigger     string               `json:"trigger,omitempty"`
	DurationMS  int64                `json:"durationMs"`
	Digest      string               `json:"digest,omitempty"`
	Diagnostics []schemas.Diagnostic `json:"diagnostics,omitempty"`
	Error       string               `json:"error,omitempty"`
	// Replaced is set on a heal (trigger "heal"): what the gateway ran
	// when the desired bundle was pushed again. Nil on other entries.
	Replaced *GatewayRun `json:"replaced,omitempty"`
}

// GatewayRun is what a gateway was running: a bundle's version and digest,
// or nothing (both empty).
type GatewayRun struct {
	// Version of the running bundle; empty when the gateway ran none.
	Version string `json:"version,omitempty"`
	// Digest of the running bundle.
	Digest string `json:"digest,omitempty"`
}

// String reads "nothing" or "<version> (digest <first 12 hex digits>)".
func (g GatewayRun) String() string {
	if g.Version == "" && g.Digest == "" {
		return "nothing"
	}
	v, d := g.Version, strings.TrimPrefix(g.Digest, "sha256:")
	if len(v) == 40 {
		v = v[:12]
	}
	if v == "" {
		v = "a bundle without a version"
	}
	if len(d) > 12 {
		d = d[:12]
	}
	if d == "" {
		return v
	}
	return v + " (digest " + d + ")"
}

// Pin holds the agent on one commit after a rollback.
type Pin struct {
	// SHA is the commit the agent is pinned to.
	SHA string `json:"sha"`
	// Reason is the operator's reason, or a generated one.
	Reason string `json:"reason,omitempty"`
	// Hold keeps the pin until resume; otherwise a new good commit lifts it.
	Hold bool `json:"hold,omitempty"`
	// From is the commit rolled back from (marked bad). Empty: none.
	From string `json:"from,omitempty"`
	// BranchHead is the branch tip when the pin was set; the pin lifts only
	// when the branch moves past it.
	BranchHead string `json:"branchHead,omitempty"`
	// Since is when the pin was set.
	Since time.Time `json:"since"`
	// By is who set it, when known.
	By string `json:"by,omitempty"`
	// Scope is PinFleet when the pin is kept in the config repository
	// (every replica obeys it) and PinLocal when it holds for this replica
	// only. Empty (a state written before fleet pins): local.
	Scope string `json:"scope,omitempty"`
	// ScopeReason says why a pin is local (no push credential, the push
	// was refused).
	ScopeReason string `json:"scopeReason,omitempty"`
	// ID is the fleet pin's mark ID in the repository; "" for a local pin.
	ID string `json:"id,omitempty"`
}

// Pin scopes.
const (
	// PinFleet: the pin is in the config repository; every replica obeys it.
	PinFleet = "fleet"
	// PinLocal: the pin holds for this replica only.
	PinLocal = "local"
)

// State is what the agent must remember across restarts.
type State struct {
	// LastApplied is the commit the gateway was last told to serve.
	LastApplied string `json:"lastApplied,omitempty"`
	// LastAppliedDigest is that bundle's digest.
	LastAppliedDigest string `json:"lastAppliedDigest,omitempty"`
	// LastAppliedAt is when it was applied.
	LastAppliedAt time.Time `json:"lastAppliedAt,omitzero"`
	// LastAttempted is the last commit a sync looked at, whatever came of it.
	LastAttempted string `json:"lastAttempted,omitempty"`
	// LastAttemptedAt is when.
	LastAttemptedAt time.Time `json:"lastAttemptedAt,omitzero"`
	// LastResult is the result of the last attempt.
	LastResult Result `json:"lastResult,omitempty"`
	// Head is the branch tip seen by the last successful head check.
	Head string `json:"head,omitempty"`
	// Applied lists applied commits, oldest first, without repeats
	// (bounded); rollback without a sha walks it backwards.
	Applied []string `json:"applied,omitempty"`
	// Pin is set while pinned after a rollback.
	Pin *Pin `json:"pin,omitempty"`
	// Bad lists commits rolled back from; they are never applied by
	// themselves again.
	Bad []string `json:"bad,omitempty"`
	// LiftedPinID is the ID of the last fleet pin this replica lifted
	// (fix-forward), so that the same pin, still in the repository when
	// this replica could not delete it, is not obeyed again.
	LiftedPinID string `json:"liftedPinID,omitempty"`
}

// IsBad reports whether sha is marked bad.
func (s *State) IsBad(sha string) bool {
	for _, b := range s.Bad {
		if b == sha {
			return true
		}
	}
	return false
}

// Options tune a Store. Zero fields take the defaults.
type Options struct {
	// KeepBundles is how many bundles stay on disk. Default 100.
	KeepBundles int
	// MaxHistory is how many history entries are kept; the file is compacted
	// when it holds twice as many. Default 10000.
	MaxHistory int
}

// ErrNotFound is returned by Bundle when no bundle of that commit is stored.
var ErrNotFound = errors.New("no stored bundle")

// Store is the agent's state directory. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options

	mu      sync.Mutex
	hist    *os.File
	entries []Entry
	state   State
	// Dropped counts history lines that were torn or corrupt at Open.
	dropped int
}

// Open opens (creating when missing) the store in dir. A torn last history
// line is cut off; a corrupt line in the middle is skipped and counted in
// Dropped.
func Open(dir string, opts Options) (*Store, error) {
	if opts.KeepBundles <= 0 {
		opts.KeepBundles = 100
	}
	if opts.MaxHistory <= 0 {
		opts.MaxHistory = 10000
	}
	if err := os.MkdirAll(filepath.Join(dir, "bundles"), 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	s := &Store{dir: dir, opts: opts}
	if err := s.loadState(); err != nil {
		return nil, err
	}
	if err := s.openHistory(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Close closes the history file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist == nil {
		return nil
	}
	err := s.hist.Close()
	s.hist = nil
	return err
}

// Dropped is the number of torn or corrupt history lines found at Open.
func (s *Store) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Store) statePath() string   { return filepath.Join(s.dir, "state.json") }
func (s *Store) historyPath() string { return filepath.Join(s.dir, "history.jsonl") }
func (s *Store) bundlePath(sha string) string {
	return filepath.Join(s.dir, "bundles", sha+".json")
}

func (s *Store) loadState() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading state: %w", err)
	}
	if err := json.Unmarshal(b, &s.state); err != nil {
		return fmt.Errorf("decoding state %s: %w", s.statePath(), err)
	}
	return nil
}

// State returns a copy of the current state.
func (s *Store) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneState(s.state)
}

// Update applies fn to a copy of the state and writes the result
// atomically; on a write error the state is unchanged.
func (s *Store) Update(fn func(*State)) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := cloneState(s.state)
	fn(&next)
	if n := len(next.Applied); n > 2*s.opts.KeepBundles {
		next.Applied = next.Applied[n-2*s.opts.KeepBundles:]
	}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return s.state, fmt.Errorf("encoding state: %w", err)
	}
	if err := atomicfile.Write(s.statePath(), append(b, '\n'), 0o600); err != nil {
		return cloneState(s.state), fmt.Errorf("writing state: %w", err)
	}
	s.state = next
	return cloneState(next), nil
}

func cloneState(st State) State {
	st.Applied = append([]string(nil), st.Applied...)
	st.Bad = append([]string(nil), st.Bad...)
	if st.Pin != nil {
		p := *st.Pin
		st.Pin = &p
	}
	return st
}

// SaveBundle writes b as bundles/<version>.json atomically and prunes the
// oldest bundles beyond KeepBundles.
func (s *Store) SaveBundle(b *schemas.Bundle) error {
	// The version names the bundle's file: schemas.CheckVersion keeps it a
	// plain file name.
	if err := schemas.CheckVersion(b.Version); err != nil {
		return fmt.Errorf("saving bundle: %w", err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encoding bundle %s: %w", b.Version, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.Write(s.bundlePath(b.Version), data, 0o600); err != nil {
		return fmt.Errorf("saving bundle %s: %w", b.Version, err)
	}
	return s.prune()
}

func (s *Store) prune() error {
	dir := filepath.Join(s.dir, "bundles")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing bundles: %w", err)
	}
	type fileAge struct {
		name string
		mod  time.Time
	}
	var files []fileAge
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		files = append(files, fileAge{e.Name(), info.ModTime()})
	}
	if len(files) <= s.opts.KeepBundles {
		return nil
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].name < files[j].name
	})
	for _, f := range files[:len(files)-s.opts.KeepBundles] {
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pruning bundle %s: %w", f.name, err)
		}
	}
	return nil
}

// Bundle returns the stored bundle of version sha (a source's revision),
// verified. A missing bundle, or a version that cannot name one, wraps
// ErrNotFound; a corrupt one is an error naming the file.
func (s *Store) Bundle(sha string) (*schemas.Bundle, error) {
	if schemas.CheckVersion(sha) != nil {
		return nil, fmt.Errorf("reading bundle %q: %w", sha, ErrNotFound)
	}
	s.mu.Lock()
	data, err := os.ReadFile(s.bundlePath(sha))
	s.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading bundle %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", sha, err)
	}
	var b schemas.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decoding bundle %s: %w", s.bundlePath(sha), err)
	}
	if err := b.Verify(); err != nil {
		return nil, fmt.Errorf("verifying stored bundle %s: %w", s.bundlePath(sha), err)
	}
	if b.Version != sha {
		return nil, fmt.Errorf("stored bundle %s holds version %s", s.bundlePath(sha), b.Version)
	}
	return &b, nil
}

// History line format: "<crc32 8 hex> <length> <json>\n".

func encodeLine(e Entry) ([]byte, error) {
	js, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding history entry: %w", err)
	}
	line := fmt.Appendf(nil, "%08x %d ", crc32.ChecksumIEEE(js), len(js))
	line = append(line, js...)
	return append(line, '\n'), nil
}

// decodeLine parses one line without its newline.
func decodeLine(line []byte) (Entry, bool) {
	var e Entry
	sum, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(sum) != 8 {
		return e, false
	}
	lenb, js, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return e, false
	}
	n, err := strconv.Atoi(string(lenb))
	if err != nil || n != len(js) {
		return e, false
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE(js) {
		return e, false
	}
	if json.Unmarshal(js, &e) != nil {
		return e, false
	}
	return e, true
}

func (s *Store) openHistory() error {
	f, err := os.OpenFile(s.historyPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening history: %w", err)
	}
	var (
		good int64 // offset after the last complete line
		off  int64
	)
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			off += int64(len(line))
			if e, ok := decodeLine(line[:len(line)-1]); ok {
				s.entries = append(s.entries, e)
			} else {
				s.dropped++
			}
			good = off
			continue
		}
		if len(line) > 0 {
			s.dropped++ // torn tail: no newline
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("reading history: %w", err)
		}
	}
	// A torn tail, or a last complete line that is corrupt, is cut off so
	// the next append starts on a clean line.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return fmt.Errorf("truncating torn history: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seeking history: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing history: %w", err)
	}
	s.hist = f
	if len(s.entries) > s.opts.MaxHistory {
		s.entries = s.entries[len(s.entries)-s.opts.MaxHistory:]
	}
	return nil
}

// Append records e durably (the line is fsynced before Append returns).
func (s *Store) Append(e Entry) error {
	line, err := encodeLine(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hist == nil {
		return errors.New("appending history: store is closed")
	}
	fi, err := s.hist.Stat()
	if err != nil {
		return fmt.Errorf("appending history: %w", err)
	}
	end := fi.Size()
	if _, err := s.hist.Write(line); err != nil {
		// A short write (ENOSPC) leaves a fragment that the next append would
		// be glued to, losing that entry on the next open: cut it off.
		return errors.Join(fmt.Errorf("appending history: %w", err), s.truncateTo(end))
	}
	if err := s.hist.Sync(); err != nil {
		return errors.Join(fmt.Errorf("syncing history: %w", err), s.truncateTo(end))
	}
	s.entries = append(s.entries, e)
	if len(s.entries) >= 2*s.opts.MaxHistory {
		return s.compact()
	}
	return nil
}

// truncateTo cuts the history file back to size bytes after a failed append.
func (s *Store) truncateTo(size int64) error {
	if err := s.hist.Truncate(size); err != nil {
		return fmt.Errorf("cutting off a partial history line: %w", err)
	}
	// The file is not opened O_APPEND (until a compaction): move the offset
	// back too, or the next append would leave a hole of NULs.
	if _, err := s.hist.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("cutting off a partial history line: %w", err)
	}
	return nil
}

// compact rewrites the history with the newest MaxHistory entries.
func (s *Store) compact() error {
	keep := s.entries[len(s.entries)-s.opts.MaxHistory:]
	var buf bytes.Buffer
	for _, e := range keep {
		line, err := encodeLine(e)
		if err != nil {
			return err
		}
		buf.Write(line)
	}
	if err := atomicfile.Write(s.historyPath(), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("compacting history: %w", err)
	}
	f, err := os.OpenFile(s.historyPath(), os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopening history: %w", err)
	}
	s.hist.Close()
	s.hist = f
	s.entries = append([]Entry(nil), keep...)
	return nil
}

// History returns up to n entries, newest first. n <= 0 means all.
func (s *Store) History(n int) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || n > len(s.entries) {
		n = len(s.entries)
	}
	out := make([]Entry, 0, n)
	for i := len(s.entries) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, s.entries[i])
	}
	return out
}
