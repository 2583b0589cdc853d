package gitsrc

import (
	"context"
	"testing"
)

// TestResetOver grows a clone with a pull request head from a fork, then
// empties it past a bound: the next fetches clone again and both heads read.
func TestResetOver(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	base := commitFiles(t, work, "base", map[string]string{"a.yaml": "a: 1\n"})
	run(t, work, "checkout", "-q", "-b", "fork")
	noise := incompressible(t, 64<<10)
	pr := commitFiles(t, work, "big head", map[string]string{"big.txt": noise})
	run(t, work, "update-ref", "refs/pull/5/head", pr)
	run(t, work, "checkout", "-q", "main")

	s := openSource(t, work, nil)
	if _, _, err := s.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	small, err := diskUsage(s.StorageDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FetchRef(context.Background(), "refs/pull/5/head"); err != nil {
		t.Fatal(err)
	}
	grown, err := diskUsage(s.StorageDir())
	if err != nil {
		t.Fatal(err)
	}
	if grown < small+64<<10 {
		t.Fatalf("the fork's head grew the clone from %d to %d bytes only", small, grown)
	}

	for _, tc := range []struct {
		name      string
		max       int64
		wantReset bool
	}{
		{"under the bound", grown, false},
		{"over the bound", small + 32<<10, true},
		{"empty after the reset", 0, true}, // a fresh clone has HEAD and config
	} {
		reset, err := s.ResetOver(tc.max)
		if err != nil || reset != tc.wantReset {
			t.Fatalf("%s: ResetOver(%d) = %v, %v; want %v", tc.name, tc.max, reset, err, tc.wantReset)
		}
	}
	if s.HasCommit(pr) || s.HasCommit(base) {
		t.Fatal("objects survived the reset")
	}
	if n, err := diskUsage(s.StorageDir()); err != nil || n >= small {
		t.Fatalf("after the reset the clone holds %d bytes (%v); a fetched clone held %d", n, err, small)
	}
	head, _, err := s.Update(context.Background())
	if err != nil || head != base {
		t.Fatalf("Update after the reset = %s, %v; want %s", head, err, base)
	}
	if h, err := s.FetchRef(context.Background(), "refs/pull/5/head"); err != nil || h != pr {
		t.Fatalf("FetchRef after the reset = %s, %v; want %s", h, err, pr)
	}
}
