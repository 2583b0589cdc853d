package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

func sha(i int) string { return fmt.Sprintf("%040x", i) }

func testBundle(t *testing.T, i int) *schemas.Bundle {
	t.Helper()
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": {Targets: []string{fmt.Sprintf("http://127.0.0.1:%d", 1000+i)}}}}
	b, err := schemas.NewBundle(sha(i), schemas.Source{Commit: sha(i)}, cfg, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openStore(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBundlesSavePruneAndVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{KeepBundles: 3})
	for i := 1; i <= 5; i++ {
		if err := s.SaveBundle(testBundle(t, i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct mtimes order the prune
	}
	tests := []struct {
		name    string
		sha     string
		wantErr error
	}{
		{"pruned oldest", sha(1), ErrNotFound},
		{"pruned second", sha(2), ErrNotFound},
		{"kept", sha(3), nil},
		{"kept newest", sha(5), nil},
		{"not a sha", "../state", ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Bundle(tc.sha)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Bundle(%s) err = %v, want %v", tc.sha, err, tc.wantErr)
				}
				return
			}
			if err != nil || b.Version != tc.sha {
				t.Fatalf("Bundle(%s) = %v, %v", tc.sha, b, err)
			}
		})
	}
	info, err := os.Stat(filepath.Join(dir, "bundles", sha(5)+".json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file mode %v, %v; want 0600", info.Mode(), err)
	}
	// A tampered bundle is refused, not half-loaded.
	p := filepath.Join(dir, "bundles", sha(4)+".json")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), "1004", "1999", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bundle(sha(4)); !errors.Is(err, schemas.ErrDigest) {
		t.Fatalf("tampered bundle err = %v, want ErrDigest", err)
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	want, err := s.Update(func(st *State) {
		st.LastApplied = sha(2)
		st.LastAttempted = sha(3)
		st.Applied = []string{sha(1), sha(2)}
		st.Bad = []string{sha(3)}
		st.Pin = &Pin{SHA: sha(2), Reason: "bad deploy", Hold: true, From: sha(3), Since: time.Unix(1700000000, 0).UTC()}
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, dir, Options{})
	got := s2.State()
	if got.LastApplied != want.LastApplied || got.Pin == nil || *got.Pin != *want.Pin || !got.IsBad(sha(3)) || got.IsBad(sha(2)) {
		t.Fatalf("state after reopen = %+v, want %+v", got, want)
	}
	// State returns copies: changing one does not change the store.
	got.Pin.SHA = "x"
	if s2.State().Pin.SHA != sha(2) {
		t.Fatal("State() shares memory with the store")
	}
}

func entry(i int) Entry {
	return Entry{Time: time.Unix(1700000000+int64(i), 0).UTC(), SHA: sha(i), Result: ResultApplied, Subject: fmt.Sprintf("commit %d", i), DurationMS: int64(i)}
}

// TestHistoryTornTail simulates kill -9 mid-append by cutting the file at
// every offset inside the last line: the earlier entries survive, the torn
// one is dropped, and the next append is readable after a reopen.
func TestHistoryTornTail(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	s := openStore(t, base, Options{})
	for i := 1; i <= 3; i++ {
		if err := s.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	full, err := os.ReadFile(filepath.Join(base, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lastStart := strings.LastIndex(strings.TrimSuffix(string(full), "\n"), "\n") + 1
	for cut := lastStart + 1; cut < len(full); cut += 7 {
		t.Run(fmt.Sprintf("cut at %d of %d", cut, len(full)), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), full[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, dir, Options{})
			if got := s.History(0); len(got) != 2 || got[0].SHA != sha(2) || s.Dropped() != 1 {
				t.Fatalf("after torn tail: %d entries (newest %v), dropped %d; want 2, dropped 1", len(got), got, s.Dropped())
			}
			if err := s.Append(entry(9)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2 := openStore(t, dir, Options{})
			if got := s2.History(0); len(got) != 3 || got[0].SHA != sha(9) || s2.Dropped() != 0 {
				t.Fatalf("after reopen: %v dropped %d", got, s2.Dropped())
			}
		})
	}
}

func TestHistoryCorruptMiddleLineSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	for i := 1; i <= 3; i++ {
		if err := s.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	p := filepath.Join(dir, "history.jsonl")
	data, _ := os.ReadFile(p)
	data = []byte(strings.Replace(string(data), "commit 2", "commit X", 1)) // checksum no longer matches
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, Options{})
	got := s2.History(0)
	if len(got) != 2 || got[0].SHA != sha(3) || got[1].SHA != sha(1) || s2.Dropped() != 1 {
		t.Fatalf("entries %v dropped %d", got, s2.Dropped())
	}
}

func TestHistoryCompactsAndLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxHistory: 3})
	for i := 1; i <= 7; i++ {
		if err := s.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		n     int
		first string
		count int
	}{
		{"all", 0, sha(7), 4},
		{"two", 2, sha(7), 2},
		{"more than held", 50, sha(7), 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.History(tc.n)
			if len(got) != tc.count || got[0].SHA != tc.first {
				t.Fatalf("History(%d) = %d entries starting %s", tc.n, len(got), got[0].SHA)
			}
		})
	}
	s.Close()
	s2 := openStore(t, dir, Options{MaxHistory: 3})
	if got := s2.History(0); len(got) != 3 || got[0].SHA != sha(7) || got[2].SHA != sha(5) {
		t.Fatalf("after compaction and reopen: %v", got)
	}
}

func FuzzDecodeLine(f *testing.F) {
	line, _ := encodeLine(entry(1))
	f.Add(line[:len(line)-1])
	f.Add([]byte("00000000 2 {}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := decodeLine(b)
		if !ok {
			return
		}
		again, err := encodeLine(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := decodeLine(again[:len(again)-1]); !ok {
			t.Fatalf("re-encoded entry does not decode: %q", again)
		}
	})
}

// TestFailedAppendIsCutOff: a short write (ENOSPC) leaves part of a line;
// the store cuts it off so the next append starts a clean line and nothing
// is lost on the next open.
func TestFailedAppendIsCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	if err := s.Append(entry(1)); err != nil {
		t.Fatal(err)
	}
	fi, err := s.hist.Stat()
	if err != nil {
		t.Fatal(err)
	}
	line, err := encodeLine(entry(2))
	if err != nil {
		t.Fatal(err)
	}
	// What a write that ran out of space leaves behind, and what Append does
	// about it.
	if _, err := s.hist.Write(line[:len(line)/2]); err != nil {
		t.Fatal(err)
	}
	if err := s.truncateTo(fi.Size()); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(entry(3)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, dir, Options{})
	if got := s2.History(0); len(got) != 2 || got[0].SHA != sha(3) || got[1].SHA != sha(1) || s2.Dropped() != 0 {
		t.Fatalf("after reopen: %v, dropped %d; want entries 3 and 1, none dropped", got, s2.Dropped())
	}
}

func TestHealEntryNamesWhatTheGatewayRan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		was  GatewayRun
		want string
	}{
		{"nothing", GatewayRun{}, "nothing"},
		{"a commit", GatewayRun{Version: sha(7), Digest: "sha256:" + strings.Repeat("ab", 32)}, sha(7)[:12] + " (digest abababababab)"},
		{"a hand-made version", GatewayRun{Version: "hotfix-1", Digest: strings.Repeat("cd", 32)}, "hotfix-1 (digest cdcdcdcdcdcd)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.was.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			// The entry keeps it across a restart.
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			was := tc.was
			if err := s.Append(Entry{Time: time.Now().UTC(), SHA: sha(1), Result: ResultApplied, Trigger: "heal", Replaced: &was}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			got := openStore(t, dir, Options{}).History(1)
			if len(got) != 1 || got[0].Replaced == nil || *got[0].Replaced != tc.was {
				t.Fatalf("after reopen: %+v, want replaced %+v", got, tc.was)
			}
		})
	}
}

// TestBundleVersions: a version is a source's opaque revision, kept as a file
// name only when it is a plain one.
func TestBundleVersions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": {Targets: []string{"http://127.0.0.1:1000"}}}}
	tests := []struct {
		name    string
		version string
		ok      bool
	}{
		{"git sha", sha(1), true},
		{"etcd revision", "1234", true},
		{"object digest", "sha256-0a1b2c.v2", true},
		{"dot dot", "..", false},
		{"hidden", ".state", false},
		{"traversal", "../state", false},
		{"nested", "a/b", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := schemas.NewBundle(tc.version, schemas.Source{Commit: tc.version}, cfg, time.Unix(1700000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			err = s.SaveBundle(b)
			if (err == nil) != tc.ok {
				t.Fatalf("SaveBundle(%q) = %v, want ok %v", tc.version, err, tc.ok)
			}
			got, err := s.Bundle(tc.version)
			if !tc.ok {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Bundle(%q) err = %v, want ErrNotFound", tc.version, err)
				}
				return
			}
			if err != nil || got.Version != tc.version {
				t.Fatalf("Bundle(%q) = %v, %v", tc.version, got, err)
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "bundles" && e.Name() != "history.jsonl" {
			t.Errorf("unexpected entry %q in the state directory", e.Name())
		}
	}
}
