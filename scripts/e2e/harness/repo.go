package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitEnv isolates git from the machine's configuration and fixes the
// author, so that commits are made the same way everywhere.
var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null", "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=E2E Operator", "GIT_AUTHOR_EMAIL=ops@example.com",
	"GIT_COMMITTER_NAME=E2E Operator", "GIT_COMMITTER_EMAIL=ops@example.com",
}

// Repo is a config repository on disk, changed with the git CLI.
type Repo struct {
	// Dir is the work tree.
	Dir string
}

// NewRepo creates an empty repository with branch main in dir.
func NewRepo(dir string) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the config repository: %w", err)
	}
	r := &Repo{Dir: dir}
	if _, err := r.Git("init", "-q", "-b", "main"); err != nil {
		return nil, err
	}
	// Let a clone of this non-bare repository be served over smart HTTP.
	if _, err := r.Git("config", "http.receivepack", "false"); err != nil {
		return nil, err
	}
	return r, nil
}

// Git runs git in the repository and returns its trimmed stdout.
func (r *Repo) Git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), gitEnv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Write replaces a file of the work tree.
func (r *Repo) Write(name, content string) error {
	if err := os.WriteFile(filepath.Join(r.Dir, name), []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Commit stages everything and commits it; it returns the new head SHA.
func (r *Repo) Commit(msg string) (string, error) {
	if _, err := r.Git("add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.Git("commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return "", err
	}
	return r.Head()
}

// Head returns the SHA of main's tip.
func (r *Repo) Head() (string, error) { return r.Git("rev-parse", "refs/heads/main") }

// WriteCommit writes one file and commits it.
func (r *Repo) WriteCommit(name, content, msg string) (string, error) {
	if err := r.Write(name, content); err != nil {
		return "", err
	}
	return r.Commit(msg)
}

// ModuleRoot returns the directory of the gitgate module.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the gitgate module")
	}
	return filepath.Dir(mod), nil
}

// Bins are the paths of the built binaries.
type Bins struct {
	Gateway, Agent string
}

// Build builds the gateway and the agent into outDir.
func Build(ctx context.Context, root, outDir string) (Bins, error) {
	b := Bins{Gateway: filepath.Join(outDir, "gateway"), Agent: filepath.Join(outDir, "agent")}
	for pkg, out := range map[string]string{"./gateway": b.Gateway, "./agent": b.Agent} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}
