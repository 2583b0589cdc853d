package source_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas/load"
)

const validYAML = "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:9001\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n"

// commit writes files into the work tree of repo and commits them,
// returning the commit's SHA.
func commit(t *testing.T, repo string, files map[string]string) string {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "--allow-empty", "-m", "change")
	return strings.TrimSpace(git(t, repo, "rev-parse", "HEAD"))
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// failing is a Validator that fails as an evaluator subprocess might.
type failing struct{}

func (failing) Files(context.Context, []load.File, load.Limits) (load.Result, error) {
	return load.Result{}, errors.New("evaluator crashed")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	valid := commit(t, repo, map[string]string{"cfg/gitgate.yaml": validYAML})
	typo := commit(t, repo, map[string]string{"cfg/gitgate.yaml": strings.Replace(validYAML, "weight:", "wieght:", 1)})
	local, err := gitsrc.OpenLocal(repo)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		rev, dir  string
		v         source.Validator
		wantCfg   bool
		wantDiag  string // a substring of the first diagnostic; "" for none
		wantDFile string
		wantErr   string
	}{
		{name: "valid", rev: valid, dir: "cfg", wantCfg: true},
		{name: "invalid config is a diagnostic", rev: typo, dir: "cfg", wantDiag: "wieght", wantDFile: "gitgate.yaml"},
		{name: "missing path is a diagnostic", rev: valid, dir: "nope", wantDiag: `config path "nope" does not exist`},
		{name: "root read recursively", rev: valid, dir: "", wantCfg: true},
		{name: "validator failure is an error", rev: valid, dir: "cfg", v: failing{}, wantErr: "validating " + valid[:12] + ": evaluator crashed"},
		{name: "unknown revision is an error", rev: strings.Repeat("e", 40), dir: "cfg", wantErr: "reading commit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := source.Validate(context.Background(), local, tc.rev, tc.dir, tc.v, load.Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (res.Config != nil) != tc.wantCfg {
				t.Fatalf("config present = %v, want %v (diagnostics %v)", res.Config != nil, tc.wantCfg, res.Diagnostics)
			}
			if tc.wantDiag == "" {
				if len(res.Diagnostics) > 0 {
					t.Fatalf("diagnostics %v, want none", res.Diagnostics)
				}
				return
			}
			if len(res.Diagnostics) == 0 || !strings.Contains(res.Diagnostics[0].String(), tc.wantDiag) || res.Diagnostics[0].File != tc.wantDFile {
				t.Fatalf("diagnostics %v, want the first on %q containing %q", res.Diagnostics, tc.wantDFile, tc.wantDiag)
			}
		})
	}
}

func TestShort(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567": "0123456789ab",
		"1234": "1234",
		"":     "",
	} {
		if got := source.Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}
