package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas/load"
)

// Config files of a canary that shifts from 90/10 to 75/25 and gains a rate
// limit, while the legacy upstream goes away.
const (
	diffUpstreamsV1 = `upstreams:
  stable:
    targets: [http://10.0.0.1:8080]
  canary:
    targets: [http://10.0.0.2:8080]
  legacy:
    targets: [http://10.0.0.9:8080]
`
	diffRoutesV1 = `routes:
  web:
    match:
      hosts: [www.example.com]
      path: /
    backends:
      - upstream: stable
        weight: 90
      - upstream: canary
        weight: 10
  reports:
    match:
      hosts: [www.example.com]
      path: /reports
    backends:
      - upstream: legacy
        weight: 100
`
	diffUpstreamsV2 = `upstreams:
  stable:
    targets: [http://10.0.0.1:8080]
  canary:
    targets: [http://10.0.0.2:8080]
`
	diffRoutesV2 = `routes:
  web:
    match:
      hosts: [www.example.com]
      path: /
    backends:
      - upstream: stable
        weight: 75
      - upstream: canary
        weight: 25
    policies: [ratelimit]
  reports:
    match:
      hosts: [www.example.com]
      path: /reports
    backends:
      - upstream: stable
        weight: 100
policies:
  ratelimit:
    rateLimit:
      rate: 50
`
	// diffRoutesBad misspells a field name on line 7.
	diffRoutesBad = `routes:
  web:
    match:
      hosts: [www.example.com]
    backends:
      - upstream: stable
        weigth: 100
`
)

// diffSkipUntilLoaderBuilt skips end-to-end tests while schemas/load is still
// the placeholder that reports "loader not built yet".
func diffSkipUntilLoaderBuilt(t *testing.T) {
	t.Helper()
	res := load.Files([]load.File{{Path: "u.yaml", Data: []byte(diffUpstreamsV2)}}, load.DefaultLimits)
	for _, d := range res.Diagnostics {
		if strings.Contains(d.Message, "loader not built yet") {
			t.Skip("schemas/load is still a placeholder")
		}
	}
}

func diffWriteFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func diffConfigDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	diffWriteFiles(t, dir, files)
	return dir
}

// diffGit runs the git CLI in dir with a fixed identity and returns its output.
func diffGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// diffRepo makes a repository with three commits: README only, the config
// v1 under config/, then v2. It returns the directory and the commit SHAs.
func diffRepo(t *testing.T) (dir string, shas []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not installed")
	}
	dir = t.TempDir()
	diffGit(t, dir, "init", "-q", "-b", "main")
	commit := func(msg string, files map[string]string) {
		diffWriteFiles(t, dir, files)
		diffGit(t, dir, "add", "-A")
		diffGit(t, dir, "commit", "-q", "-m", msg)
		shas = append(shas, diffGit(t, dir, "rev-parse", "HEAD"))
	}
	commit("readme", map[string]string{"README.md": "# config\n"})
	commit("v1", map[string]string{"config/upstreams.yaml": diffUpstreamsV1, "config/routes.yaml": diffRoutesV1})
	commit("v2", map[string]string{"config/upstreams.yaml": diffUpstreamsV2, "config/routes.yaml": diffRoutesV2})
	return dir, shas
}

func runDiffCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = runDiff(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDiffArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		wantOut  string
	}{
		{name: "no arguments", args: nil, wantCode: 1, wantErr: "give two config directories"},
		{name: "one directory", args: []string{"a"}, wantCode: 1, wantErr: "got 1 argument"},
		{name: "unknown format", args: []string{"--format", "yaml", "a", "b"}, wantCode: 1, wantErr: `unknown --format "yaml"`},
		{name: "path without repo", args: []string{"--path", "cfg", "a", "b"}, wantCode: 1, wantErr: "use it with --repo or --base"},
		{name: "repo with one revision", args: []string{"--repo", ".", "HEAD"}, wantCode: 1, wantErr: "two revisions"},
		{name: "base with two directories", args: []string{"--base", "HEAD", "a", "b"}, wantCode: 1, wantErr: "at most one argument"},
		{name: "unknown flag", args: []string{"--nope"}, wantCode: 1, wantErr: "unknown flag: --nope"},
		{name: "single-dash long flag", args: []string{"-exit-code", "a", "b"}, wantCode: 1, wantErr: "long flags take two dashes: --exit-code"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantOut: "agent diff <old-dir> <new-dir> | --repo <dir> <old-rev> <new-rev>"},
		{name: "missing directory", args: []string{"/nonexistent/a", "/nonexistent/b"}, wantCode: 1, wantErr: "loading OLD /nonexistent/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDiffCmd(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, tt.wantOut)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestDiffDirectories(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	v1 := diffConfigDir(t, map[string]string{"upstreams.yaml": diffUpstreamsV1, "routes.yaml": diffRoutesV1})
	v2 := diffConfigDir(t, map[string]string{"upstreams.yaml": diffUpstreamsV2, "routes.yaml": diffRoutesV2})
	v1copy := diffConfigDir(t, map[string]string{"all.yaml": diffUpstreamsV1 + diffRoutesV1})
	bad := diffConfigDir(t, map[string]string{"upstreams.yaml": diffUpstreamsV2, "routes.yaml": diffRoutesBad})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{
			name:     "text",
			args:     []string{v1, v2},
			wantCode: 0,
			wantOut:  []string{"~ route web", "~ backends: stable 90→75, canary 10→25", "+ policies: attached ratelimit", "- upstream legacy", "+ policy ratelimit", "Plan: 1 to create, 2 to update, 1 to delete."},
		},
		{name: "exit code with changes", args: []string{"--exit-code", v1, v2}, wantCode: 2, wantOut: []string{"~ route reports"}},
		{name: "exit code without changes across a file split", args: []string{v1, v1copy, "--exit-code"}, wantCode: 0, wantOut: []string{"No changes."}},
		{name: "markdown", args: []string{"--format", "markdown", v1, v2}, wantOut: []string{"| routes | 0 | 2 | 0 |", "<details><summary><code>~</code> route <b>web</b>"}},
		{name: "invalid new side", args: []string{v1, bad}, wantCode: 1, wantErr: "NEW " + bad + " is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDiffCmd(tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestDiffInvalidSideNamesFileAndLine(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	v1 := diffConfigDir(t, map[string]string{"upstreams.yaml": diffUpstreamsV1, "routes.yaml": diffRoutesV1})
	bad := diffConfigDir(t, map[string]string{"upstreams.yaml": diffUpstreamsV2, "routes.yaml": diffRoutesBad})
	code, _, stderr := runDiffCmd(v1, bad)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1", code)
	}
	if !strings.Contains(stderr, "  routes.yaml:7:") || !strings.Contains(stderr, "weigth") {
		t.Errorf("stderr does not point at routes.yaml:7 and the misspelled field:\n%s", stderr)
	}
}

func TestDiffGitRevisions(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	repo, shas := diffRepo(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{
			name:     "parent and head",
			args:     []string{"--repo", repo, "--path", "config", "--exit-code", "HEAD~1", "HEAD"},
			wantCode: 2,
			wantOut:  []string{"~ backends: stable 90→75, canary 10→25", "- upstream legacy"},
		},
		{
			name:    "sha prefixes and branch",
			args:    []string{"--repo", repo, "--path", "config/", shas[1][:7], "main"},
			wantOut: []string{"~ route web"},
		},
		{
			name:     "same revision twice",
			args:     []string{"--repo", repo, "--path", "config", "--exit-code", "HEAD", shas[2]},
			wantCode: 0,
			wantOut:  []string{"No changes."},
		},
		{
			name:    "config path missing at the old revision is empty",
			args:    []string{"--repo", repo, "--path", "config", shas[0], "HEAD"},
			wantOut: []string{"+ route web", "+ upstream canary", "Plan: 5 to create, 0 to update, 0 to delete."},
			wantErr: `config path "config" does not exist at ` + shas[0],
		},
		{
			name:     "config path missing on both sides",
			args:     []string{"--repo", repo, "--path", "nope", "HEAD~1", "HEAD"},
			wantCode: 1,
			wantErr:  "exists at neither",
		},
		{
			name:     "unknown revision",
			args:     []string{"--repo", repo, "--path", "config", "no-such-branch", "HEAD"},
			wantCode: 1,
			wantErr:  `resolving revision "no-such-branch"`,
		},
		{
			name:     "not a repository",
			args:     []string{"--repo", t.TempDir(), "HEAD~1", "HEAD"},
			wantCode: 1,
			wantErr:  "opening Git repository",
		},
		{
			name:    "json",
			args:    []string{"--repo", repo, "--path", "config", "--format", "json", "HEAD~1", "HEAD"},
			wantOut: []string{`"summary"`, `"note": "stable 90→75, canary 10→25"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDiffCmd(tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestDiffGitJSONShape(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	repo, _ := diffRepo(t)
	code, stdout, stderr := runDiffCmd("--repo", repo, "--path", "config", "--format", "json", "HEAD~1", "HEAD")
	if code != 0 {
		t.Fatalf("exit code = %d: %s", code, stderr)
	}
	var got struct {
		Changes map[string][]struct {
			Kind, Name string
		} `json:"changes"`
		Summary struct {
			Total map[string]int `json:"total"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	want := map[string][]string{
		"create": {"policy ratelimit"},
		"update": {"route reports", "route web"},
		"delete": {"upstream legacy"},
	}
	for action, names := range want {
		var have []string
		for _, c := range got.Changes[action] {
			have = append(have, c.Kind+" "+c.Name)
		}
		if strings.Join(have, ",") != strings.Join(names, ",") {
			t.Errorf("changes.%s = %v, want %v", action, have, names)
		}
		if got.Summary.Total[action] != len(names) {
			t.Errorf("summary.total.%s = %d, want %d", action, got.Summary.Total[action], len(names))
		}
	}
}

func TestDiffGitRefusesSymlink(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	repo, _ := diffRepo(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(repo, "config", "evil.yaml")); err != nil {
		t.Fatal(err)
	}
	diffGit(t, repo, "add", "-A")
	diffGit(t, repo, "commit", "-q", "-m", "symlink")
	code, _, stderr := runDiffCmd("--repo", repo, "--path", "config", "HEAD~1", "HEAD")
	if code != 1 {
		t.Fatalf("exit code = %d, want 1 (stderr: %s)", code, stderr)
	}
	if !strings.Contains(stderr, "evil.yaml") {
		t.Errorf("stderr does not name the symlink:\n%s", stderr)
	}
}

func TestDiffGitRefusesOversizedFile(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	repo, _ := diffRepo(t)
	big := "# " + strings.Repeat("x", int(load.DefaultLimits.MaxFileBytes)) + "\n"
	diffWriteFiles(t, repo, map[string]string{"config/big.yaml": big})
	diffGit(t, repo, "add", "-A")
	diffGit(t, repo, "commit", "-q", "-m", "big")
	code, _, stderr := runDiffCmd("--repo", repo, "--path", "config", "HEAD~1", "HEAD")
	if code != 1 || !strings.Contains(stderr, "big.yaml") {
		t.Fatalf("exit code = %d, want 1 with big.yaml named; stderr:\n%s", code, stderr)
	}
}

func TestDiffBaseAgainstWorkingTree(t *testing.T) {
	t.Parallel()
	diffSkipUntilLoaderBuilt(t)
	repo, _ := diffRepo(t)
	// Uncommitted edit in the working tree: shift the canary once more.
	diffWriteFiles(t, repo, map[string]string{"config/routes.yaml": strings.Replace(
		strings.Replace(diffRoutesV2, "weight: 75", "weight: 50", 1), "weight: 25", "weight: 50", 1)})
	tests := []struct {
		name    string
		args    []string
		wantOut []string
	}{
		{
			name:    "base head, working tree config path",
			args:    []string{"--base", "HEAD", "--repo", repo, "--path", "config", "--format", "markdown"},
			wantOut: []string{"**Plan:** 0 to create, 1 to update, 0 to delete.", "~ backends: stable 75→50, canary 25→50"},
		},
		{
			name:    "base parent, explicit new directory",
			args:    []string{"--base", "HEAD~1", "--repo", repo, "--path", "config", filepath.Join(repo, "config")},
			wantOut: []string{"~ backends: stable 90→50, canary 10→50", "- upstream legacy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDiffCmd(tt.args...)
			if code != 0 {
				t.Fatalf("exit code = %d\nstderr:\n%s", code, stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestDiffBaseFindsRepositoryFromWorkingDirectory runs as CI does, inside a
// checkout with no --repo. It changes the working directory, so it does not
// run in parallel.
func TestDiffBaseFindsRepositoryFromWorkingDirectory(t *testing.T) {
	diffSkipUntilLoaderBuilt(t)
	repo, _ := diffRepo(t)
	t.Chdir(filepath.Join(repo, "config")) // a subdirectory: the repository is found above it
	code, stdout, stderr := runDiffCmd("--base", "HEAD~1", "--path", "config", "--format", "markdown", "--exit-code")
	if code != 2 {
		t.Fatalf("exit code = %d, want 2\nstderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "| upstreams | 0 | 0 | 1 |") {
		t.Errorf("markdown lacks the counts row:\n%s", stdout)
	}
}
