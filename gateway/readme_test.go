package main

import (
	"flag"
	"io"
	"os"
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
