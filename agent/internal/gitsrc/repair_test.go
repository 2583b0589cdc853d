package gitsrc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas/load"
)

// TestOpenRepairsTornStorage tears the storage of a fetched clone the ways
// a process killed in the middle of a go-git write (or a power cut) leaves
// it, then opens it again: Open must say what it repaired, the next Update
// must fetch the new head, and the whole history must read again. Before
// the repair, the agent's fetches failed for good on the first case ("ref
// file is empty"), as seen in the e2e scenario that kills the agent during
// syncs.
func TestOpenRepairsTornStorage(t *testing.T) {
	t.Parallel()
	remoteRef := filepath.Join("refs", "remotes", "origin", "main")
	onePack := func(t *testing.T, store, ext string) string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(store, "objects", "pack", "pack-*."+ext))
		if err != nil || len(m) == 0 {
			t.Fatalf("no pack-*.%s in the storage: %v", ext, err)
		}
		return m[0]
	}
	write := func(t *testing.T, path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		tear func(t *testing.T, store string)
		want string // told to OnRepair; "" for nothing repaired
	}{
		{"intact", func(*testing.T, string) {}, ""},
		{"empty remote-tracking ref", func(t *testing.T, store string) {
			write(t, filepath.Join(store, remoteRef), "")
		}, "removed main (empty)"},
		{"half a hash", func(t *testing.T, store string) {
			b, err := os.ReadFile(filepath.Join(store, remoteRef))
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(store, remoteRef), string(b[:20]))
		}, "removed main (not a ref"},
		{"empty mark tag", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "refs", "tags", "gitgate", "main", "pin"), "")
		}, "removed pin (empty)"},
		{"ref to an object not in the store", func(t *testing.T, store string) {
			write(t, filepath.Join(store, remoteRef), strings.Repeat("ab", 20)+"\n")
		}, "removed refs/remotes/origin/main (names an object not in the store)"},
		{"empty HEAD", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "HEAD"), "")
		}, "rewrote HEAD (empty)"},
		{"no HEAD", func(t *testing.T, store string) {
			if err := os.Remove(filepath.Join(store, "HEAD")); err != nil {
				t.Fatal(err)
			}
		}, "rewrote HEAD"},
		{"torn config", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "config"), "[core]\n\tbare = true\n[remote \"ori")
		}, "removed config (unreadable"},
		{"empty config", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "config"), "")
		}, ""},
		{"index without its pack", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "objects", "pack", "pack-"+strings.Repeat("cd", 20)+".idx"), "\377tOc\x00\x00")
		}, "(an index without its pack)"},
		{"torn index of a pack", func(t *testing.T, store string) {
			idx := onePack(t, store, "idx")
			b, err := os.ReadFile(idx)
			if err != nil {
				t.Fatal(err)
			}
			write(t, idx, string(b[:len(b)/2]))
		}, "(the pack of that index)"},
		{"garbage packed-refs", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "packed-refs"), "# pack-refs with: peeled\nnot a ref line\n")
		}, "re-created the storage"},
		{"a directory where HEAD belongs", func(t *testing.T, store string) {
			if err := os.Remove(filepath.Join(store, "HEAD")); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(store, "HEAD"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "re-created the storage"},
		{"temp files of interrupted writes", func(t *testing.T, store string) {
			write(t, filepath.Join(store, "objects", "pack", "tmp_pack_123"), "PACK")
			write(t, filepath.Join(store, ".config.tmp-456"), "[core")
		}, "removed tmp_pack_123 (an interrupted write's temp file)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			work := newRepo(t)
			first := commitFiles(t, work, "first", map[string]string{"cfg/a.yaml": "a: 1\n"})
			store := filepath.Join(t.TempDir(), "git")
			s := openSource(t, work, func(o *Options) { o.StorageDir = store })
			if _, _, err := s.Update(ctx); err != nil {
				t.Fatal(err)
			}
			second := commitFiles(t, work, "second", map[string]string{"cfg/a.yaml": "a: 2\n"})
			tc.tear(t, store)

			var repairs []string
			s = openSource(t, work, func(o *Options) {
				o.StorageDir = store
				o.OnRepair = func(r []string) { repairs = append(repairs, r...) }
			})
			got := strings.Join(repairs, "; ")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("Repaired() = %q, want it to hold %q", got, tc.want)
			}
			head, _, err := s.Update(ctx)
			if err != nil {
				t.Fatalf("Update after the repair: %v", err)
			}
			if head != second {
				t.Fatalf("Update = %s, want the new head %s", head, second)
			}
			for _, rev := range []string{first, second} {
				if files, err := s.Files(ctx, rev, "cfg", load.Limits{}); err != nil || len(files) != 1 {
					t.Fatalf("Files at %s: %v %v", rev, files, err)
				}
			}
			var again []string
			openSource(t, work, func(o *Options) {
				o.StorageDir = store
				o.OnRepair = func(r []string) { again = append(again, r...) }
			})
			if again != nil {
				t.Fatalf("a third Open repaired again: %q", again)
			}
		})
	}
}

// TestUpdateRepairsARefEmptiedByAFailedWrite empties the remote-tracking
// ref under an open Source, as a write that failed halfway on a full disk
// leaves it (go-git truncates the file, then writes): the next Update must
// repair it and fetch, not fail until the agent restarts.
func TestUpdateRepairsARefEmptiedByAFailedWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	work := newRepo(t)
	commitFiles(t, work, "first", map[string]string{"cfg/a.yaml": "a: 1\n"})
	store := filepath.Join(t.TempDir(), "git")
	var repairs []string
	s := openSource(t, work, func(o *Options) {
		o.StorageDir = store
		o.OnRepair = func(r []string) { repairs = append(repairs, r...) }
	})
	if _, _, err := s.Update(ctx); err != nil {
		t.Fatal(err)
	}
	second := commitFiles(t, work, "second", map[string]string{"cfg/a.yaml": "a: 2\n"})
	if err := os.WriteFile(filepath.Join(store, "refs", "remotes", "origin", "main"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	head, _, err := s.Update(ctx)
	if err != nil || head != second {
		t.Fatalf("Update = %s, %v; want %s", head, err, second)
	}
	if got := strings.Join(repairs, "; "); !strings.Contains(got, "removed main (empty)") {
		t.Fatalf("OnRepair told %q, want the emptied ref", got)
	}
	if files, err := s.Files(ctx, second, "cfg", load.Limits{}); err != nil || len(files) != 1 {
		t.Fatalf("Files at the new head: %v %v", files, err)
	}
}

// TestFreshStorageNeedsNoRepair: a replica that starts later, on an empty
// state directory, or on a directory that does not exist yet, clones
// without a repair being reported.
func TestFreshStorageNeedsNoRepair(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	head := commitFiles(t, work, "first", map[string]string{"cfg/a.yaml": "a: 1\n"})
	for _, tc := range []struct{ name, store string }{
		{"empty directory", t.TempDir()},
		{"no directory", filepath.Join(t.TempDir(), "state", "git")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var repairs []string
			s := openSource(t, work, func(o *Options) {
				o.StorageDir = tc.store
				o.OnRepair = func(r []string) { repairs = append(repairs, r...) }
			})
			if got, _, err := s.Update(context.Background()); err != nil || got != head {
				t.Fatalf("Update = %s, %v; want %s", got, err, head)
			}
			if repairs != nil {
				t.Fatalf("a fresh storage was repaired: %q", repairs)
			}
		})
	}
}
