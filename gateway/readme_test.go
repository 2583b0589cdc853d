package main

import (
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/serve"
	"github.com/gitgate/gitgate/schemas/clidoc"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's gateway CLI reference from the commands (go generate ./gateway)")

// TestREADMECLIReference fails when the README's gateway CLI reference is
// not what the cobra commands generate, so the two cannot drift apart.
// Refresh it with: go generate ./gateway
func TestREADMECLIReference(t *testing.T) {
	// The defaults of --admin-socket and --state-dir follow the
	// environment; the README shows those of an empty one.
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("STATE_DIRECTORY", "")
	ref := clidoc.Markdown(newRootCmd(io.Discard, io.Discard, func(serve.Config, zerolog.Level) error { return nil }))
	const readme = "../README.md"
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	updated, old, err := clidoc.Splice(string(doc), "gateway", ref)
	if err != nil {
		t.Fatal(err)
	}
	if *updateREADME {
		if err := os.WriteFile(readme, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if old != "\n\n"+ref {
		t.Fatalf("README.md's gateway CLI reference differs from the commands' help; run: go generate ./gateway")
	}
}

// TestREADMEFuzzTargets fails when the README's table of fuzz targets
// leaves one out or names one that is gone: every `func FuzzX` in a test
// file of the module is listed in its package's row.
func TestREADMEFuzzTargets(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[2]), "`Fuzz") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		for _, name := range strings.Split(cells[2], ",") {
			listed[pkg+"."+strings.Trim(strings.TrimSpace(name), "`")] = true
		}
	}
	found := map[string]bool{}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(src), -1) {
			found[pkg+"."+m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("no fuzz target found under ..")
	}
	for k := range found {
		if !listed[k] {
			t.Errorf("README's fuzz table lacks %s", k)
		}
	}
	for k := range listed {
		if !found[k] {
			t.Errorf("README's fuzz table lists %s, which no test file defines", k)
		}
	}
}
