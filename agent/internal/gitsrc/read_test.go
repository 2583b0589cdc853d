package gitsrc

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

func TestReadFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string) // extra changes staged before the commit
		files     map[string]string
		path      string
		lim       load.Limits
		wantPaths []string
		wantDiag  string // substring of a diagnostic; "" means success
		wantFile  string // the diagnostic's File
	}{
		{
			name:      "root reads config files and skips others",
			files:     map[string]string{"a.yaml": "a: 1\n", "b/c.json": "{}", "d.cue": "x: 1", "README.md": "hi", ".github/ci.yml": "on: push"},
			wantPaths: []string{"a.yaml", "b/c.json", "d.cue"},
		},
		{
			name:      "subdirectory paths are relative to it",
			files:     map[string]string{"cfg/routes.yml": "r: 1\n", "cfg/sub/up.yaml": "u: 1\n", "other.yaml": "o: 1\n"},
			path:      "cfg",
			wantPaths: []string{"routes.yml", "sub/up.yaml"},
		},
		{
			name:      "dot-dot cannot escape the root",
			files:     map[string]string{"cfg/a.yaml": "a: 1\n"},
			path:      "../../cfg",
			wantPaths: []string{"a.yaml"},
		},
		{
			name:     "missing config path",
			files:    map[string]string{"a.yaml": "a: 1\n"},
			path:     "nope",
			wantDiag: `config path "nope" does not exist`,
		},
		{
			name:     "config path is a file",
			files:    map[string]string{"a.yaml": "a: 1\n"},
			path:     "a.yaml",
			wantDiag: "not a directory",
		},
		{
			name:  "symlink refused",
			files: map[string]string{"a.yaml": "a: 1\n"},
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("/etc/passwd", dir+"/evil.yaml"); err != nil {
					t.Fatal(err)
				}
				run(t, dir, "add", "evil.yaml")
			},
			wantDiag: "symlinks are not allowed",
			wantFile: "evil.yaml",
		},
		{
			name:  "submodule refused",
			files: map[string]string{"a.yaml": "a: 1\n"},
			setup: func(t *testing.T, dir string) {
				run(t, dir, "update-index", "--add", "--cacheinfo", "160000,1111111111111111111111111111111111111111,vendor/sub")
			},
			wantDiag: "submodules are not allowed",
			wantFile: "vendor/sub",
		},
		{
			name:     "oversized file refused",
			files:    map[string]string{"small.yaml": "a: 1\n", "big.yaml": strings.Repeat("x", 200)},
			lim:      load.Limits{MaxFileBytes: 100, MaxTotalBytes: 1000},
			wantDiag: "over the limit of 100 bytes",
			wantFile: "big.yaml",
		},
		{
			name:     "total size refused",
			files:    map[string]string{"a.yaml": strings.Repeat("a", 80), "b.yaml": strings.Repeat("b", 80)},
			lim:      load.Limits{MaxFileBytes: 100, MaxTotalBytes: 100},
			wantDiag: "total more than the limit",
			wantFile: "b.yaml",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newRepo(t)
			for p, c := range tc.files {
				writeAndAdd(t, dir, p, c)
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			sha := run(t, dir, "commit", "-q", "-m", "test")
			_ = sha
			sha = run(t, dir, "rev-parse", "HEAD")
			repo, err := git.PlainOpen(dir)
			if err != nil {
				t.Fatal(err)
			}
			files, err := readFiles(context.Background(), repo, plumbing.NewHash(sha), tc.path, tc.lim)
			if tc.wantDiag != "" {
				var inv *schemas.InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("err = %v, want *schemas.InvalidError", err)
				}
				found := false
				for _, d := range inv.Diagnostics {
					if strings.Contains(d.Message, tc.wantDiag) && d.File == tc.wantFile {
						found = true
					}
				}
				if !found {
					t.Fatalf("diagnostics %+v lack %q for file %q", inv.Diagnostics, tc.wantDiag, tc.wantFile)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFiles: %v", err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Path)
				if want := tc.files[pathJoin(tc.path, f.Path)]; string(f.Data) != want {
					t.Errorf("%s: data %q, want %q", f.Path, f.Data, want)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.wantPaths, ",") {
				t.Fatalf("paths %v, want %v", got, tc.wantPaths)
			}
		})
	}
}

func pathJoin(dir, p string) string {
	dir = strings.Trim(strings.ReplaceAll(dir, "../", ""), "/")
	if dir == "" || dir == "." {
		return p
	}
	return dir + "/" + p
}

func writeAndAdd(t *testing.T, dir, p, c string) {
	t.Helper()
	full := dir + "/" + p
	if i := strings.LastIndex(full, "/"); i > 0 {
		if err := os.MkdirAll(full[:i], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "add", "-f", "--", p)
}

func TestReadFilesUnknownCommit(t *testing.T) {
	t.Parallel()
	dir := newRepo(t)
	commitFiles(t, dir, "init", map[string]string{"a.yaml": "a: 1\n"})
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readFiles(context.Background(), repo, plumbing.NewHash("2222222222222222222222222222222222222222"), "", load.Limits{})
	var inv *schemas.InvalidError
	if err == nil || errors.As(err, &inv) {
		t.Fatalf("err = %v, want a plain (non-user) error", err)
	}
}

// gitStdin runs git in dir with stdin and returns its trimmed stdout.
func gitStdin(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := execGit(dir, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestFilesRefusesARepeatingTree: git trees are content-addressed, so a
// commit of a few kilobytes can hold a tree whose sixteen entries name one
// subtree, eight levels deep: four billion directories to walk, each with
// a config file. A pull request from anyone's fork can ask the agent to
// read it. The walk stops at maxTreeEntries with a diagnostic on the
// config path, and an ended context stops it sooner.
func TestFilesRefusesARepeatingTree(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	base := commitFiles(t, work, "base", map[string]string{"cfg/a.yaml": "a: 1\n"})
	blob := gitStdin(t, work, "a: 1\n", "hash-object", "-w", "--stdin")
	tree := gitStdin(t, work, "100644 blob "+blob+"\ta.yaml\n", "mktree")
	for range 8 {
		var b strings.Builder
		for i := range 16 {
			b.WriteString("040000 tree " + tree + "\td" + strconv.Itoa(i) + "\n")
		}
		tree = gitStdin(t, work, b.String(), "mktree")
	}
	s, bomb := commitConfigTree(t, work, base, tree, "sixteen to the eighth")

	repo := s.repo // the Source is not used concurrently here
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		max     int    // entries; the agent's bound is maxTreeEntries
		wantErr error  // a plain error
		wantMsg string // else a diagnostic saying this
	}{
		// The agent's bound walks 100,000 entries: 2.5 s, 16 s under the
		// race detector. A lower one shows the same stop.
		{name: "the walk stops at the bound", ctx: context.Background(), max: 5000, wantMsg: "more than 5000 files and directories"},
		{name: "an ended context stops it sooner", ctx: ended, max: maxTreeEntries, wantErr: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := readFilesUpTo(tc.ctx, repo, plumbing.NewHash(bomb), "cfg", load.Limits{}, tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Files = %d files, %v; want %v", len(files), err, tc.wantErr)
				}
				return
			}
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) || !strings.Contains(inv.Diagnostics[len(inv.Diagnostics)-1].Message, tc.wantMsg) {
				t.Fatalf("Files = %d files, %v; want a diagnostic saying %q", len(files), err, tc.wantMsg)
			}
		})
	}
	// Through the Source, with the agent's bound, an ended context too.
	if _, err := s.Files(ended, bomb, "cfg", load.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Source.Files with an ended context: %v", err)
	}
}

// TestFilesBoundsPathsAndProblems: a path below the config path longer
// than maxPathBytes is refused, not built (long directory names nested
// deep, with thousands of entries at the bottom, took gigabytes to hold),
// and a walk records maxRefusals problems and counts the rest.
func TestFilesBoundsPathsAndProblems(t *testing.T) {
	t.Parallel()
	work := newRepo(t)
	base := commitFiles(t, work, "base", map[string]string{"cfg/a.yaml": "a: 1\n"})
	blob := gitStdin(t, work, "a: 1\n", "hash-object", "-w", "--stdin")
	link := gitStdin(t, work, "a.yaml", "hash-object", "-w", "--stdin")
	// 300 symlinks in one directory, and a file five directories of 250
	// bytes deep (a path of about 1,260 bytes).
	var links strings.Builder
	for i := range 300 {
		links.WriteString("120000 blob " + link + "\tl" + strconv.Itoa(i) + ".yaml\n")
	}
	linksTree := gitStdin(t, work, links.String(), "mktree")
	deep := gitStdin(t, work, "100644 blob "+blob+"\tdeep.yaml\n", "mktree")
	for i := range 5 {
		deep = gitStdin(t, work, "040000 tree "+deep+"\t"+strings.Repeat(strconv.Itoa(i), 250)+"\n", "mktree")
	}
	cfg := gitStdin(t, work, "040000 tree "+deep+"\tdeep\n040000 tree "+linksTree+"\tlinks\n100644 blob "+blob+"\ta.yaml\n", "mktree")
	s, commit := commitConfigTree(t, work, base, cfg, "long paths, many links")
	_, err := readFiles(context.Background(), s.repo, plumbing.NewHash(commit), "cfg", load.Limits{})
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Files = %v, want problems", err)
	}
	long := 0
	for _, d := range inv.Diagnostics {
		if strings.Contains(d.Message, "longer than 1024 bytes") {
			long++
			if len(d.File) > 200 {
				t.Errorf("the refused path is quoted whole: %d bytes", len(d.File))
			}
		}
	}
	if long != 1 {
		t.Errorf("%d long-path problems, want 1", long)
	}
	if len(inv.Diagnostics) != maxRefusals+1 || !strings.Contains(inv.Diagnostics[maxRefusals].Message, "more problems in the config path") {
		t.Fatalf("%d problems, the last %q; want %d and a count of the rest", len(inv.Diagnostics), inv.Diagnostics[len(inv.Diagnostics)-1].Message, maxRefusals+1)
	}
	if want := "and 201 more problems"; !strings.Contains(inv.Diagnostics[maxRefusals].Message, want) {
		t.Errorf("last problem %q, want it to say %q (300 symlinks and one long path, 100 listed)", inv.Diagnostics[maxRefusals].Message, want)
	}
}

// commitConfigTree commits, on main in work after base, a root tree whose
// only entry is cfg, the tree tree; it returns a Source that has fetched
// that commit, and the commit.
func commitConfigTree(t *testing.T, work, base, tree, msg string) (*Source, string) {
	t.Helper()
	root := gitStdin(t, work, "040000 tree "+tree+"\tcfg\n", "mktree")
	commit := gitStdin(t, work, "", "commit-tree", root, "-p", base, "-m", msg)
	run(t, work, "update-ref", "refs/heads/main", commit)
	s := openSource(t, work, nil)
	if head, _, err := s.Update(context.Background()); err != nil || head != commit {
		t.Fatalf("Update = %s, %v; want %s", head, err, commit)
	}
	return s, commit
}
