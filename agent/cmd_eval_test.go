package main

import (
	"github.com/rs/zerolog"

	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/agent/internal/ghreport"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// TestMain lets this test binary serve as the agent's evaluation child, as
// main does for the agent.
func TestMain(m *testing.M) {
	budget.ChildMain()
	os.Exit(m.Run())
}

// Budget of the tests: small, so that a bomb costs the machine little.
var (
	testBudget = budget.Budget{Timeout: 3 * time.Second, Memory: 256 << 20}
	budgetArgs = []string{"--eval-timeout", "3s", "--eval-memory", "256MiB"}
)

// doublingBomb doubles a 16-byte string 26 times (1 GiB) in hidden fields,
// which validate: in process it passes after some GiB and seconds.
func doublingBomb() string {
	var b strings.Builder
	b.WriteString("_a0: \"0123456789abcdef\"\n")
	for n := 1; n <= 26; n++ {
		fmt.Fprintf(&b, "_a%d: _a%d + _a%d\n", n, n-1, n-1)
	}
	return b.String()
}

// comprehensionBomb runs ten nested comprehensions over ten elements and
// keeps nothing: time, not memory.
const comprehensionBomb = "_l: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" +
	"_x: [for a in _l for b in _l for c in _l for d in _l for e in _l for f in _l " +
	"for g in _l for h in _l for i in _l for j in _l if false {a}]\n"

// TestValidateCUEBudget: `agent validate` reports a CUE file whose
// evaluation runs out of the --eval-* budget as an invalid config (exit 1,
// the file named), and still validates a config with an ordinary CUE file.
func TestValidateCUEBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cue      string
		wantCode int
		want     string
	}{
		{"string doubling", doublingBomb(), exitInvalid, "cfg/bomb.cue: evaluation exceeded its memory budget (256 MiB)"},
		{"nested comprehensions", comprehensionBomb, exitInvalid, "cfg/bomb.cue: evaluation exceeded its time budget (3s)"},
		{"ordinary CUE", "routes: extra: {match: path: \"/extra\", backends: [{upstream: \"web\", weight: 100}]}\n",
			exitOK, "valid: 1 upstream(s), 2 route(s), 0 policy(ies)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "cfg", "gw.yaml"), cfgYAML("9001"))
			writeFile(t, filepath.Join(root, "cfg", "bomb.cue"), tt.cue)
			var stdout, stderr bytes.Buffer
			args := append([]string{root, "--path", "cfg"}, budgetArgs...)
			code := runValidate(context.Background(), args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.want) {
				t.Fatalf("exit %d, want %d; stdout %q does not hold %q; stderr %q", code, tt.wantCode, stdout.String(), tt.want, stderr.String())
			}
		})
	}
}

func TestEvalFlagsRefuseNonsense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"zero timeout", []string{"--eval-timeout", "0s"}},
		{"tiny memory", []string{"--eval-memory", "1MiB"}},
		{"memory not a size", []string{"--eval-memory", "lots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "gw.yaml"), cfgYAML("9001"))
			var stdout, stderr bytes.Buffer
			if code := runValidate(context.Background(), append([]string{root}, tt.args...), &stdout, &stderr); code != exitUsage {
				t.Fatalf("exit %d, want %d (usage); stderr %q", code, exitUsage, stderr.String())
			}
		})
	}
}

// TestPREvaluatorCUEBudget: a pull request whose head holds a CUE bomb gets
// the budget diagnostic on its check, like any invalid head.
func TestPREvaluatorCUEBudget(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	commitConfig(t, repo, "base", cfgYAML("9001"))
	gitCmd(t, repo, "checkout", "-q", "-b", "pr3")
	writeFile(t, filepath.Join(repo, "cfg", "bomb.cue"), doublingBomb())
	bomb := commitConfig(t, repo, "generate with CUE", cfgYAML("9001"))
	gitCmd(t, repo, "update-ref", "refs/pull/3/head", bomb)
	gitCmd(t, repo, "checkout", "-q", "main")
	src, err := gitsrc.Open(gitsrc.Options{URL: repo, Branch: "main", StorageDir: filepath.Join(t.TempDir(), "git")})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := prEvaluator(src, "cfg", budget.New(testBudget), 1<<30, zerolog.Nop())(context.Background(), ghreport.PullRequest{Number: 3, HeadSHA: bomb})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Diagnostics) != 1 || ev.Diagnostics[0].File != "bomb.cue" ||
		!strings.HasPrefix(ev.Diagnostics[0].Message, "evaluation exceeded its memory budget (256 MiB)") {
		t.Fatalf("diagnostics %+v, want the memory budget on bomb.cue", ev.Diagnostics)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
