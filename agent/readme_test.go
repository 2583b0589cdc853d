package main

import (
	"flag"
	"io"
	"os"
	"testing"

	"github.com/gitgate/gitgate/schemas/clidoc"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's agent CLI reference from the commands (go generate ./agent)")

// TestREADMECLIReference fails when the README's agent CLI reference is not
// what the cobra commands generate, so the two cannot drift apart. Refresh
// it with: go generate ./agent
func TestREADMECLIReference(t *testing.T) {
	// Defaults read from the environment are shown in --help; the README
	// shows the ones of an empty environment.
	t.Setenv(controlSocketEnv, "")
	t.Setenv(peersEnv, "")
	ref := clidoc.Markdown(newRootCmd(io.Discard, io.Discard))
	const readme = "../README.md"
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	updated, old, err := clidoc.Splice(string(doc), "agent", ref)
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
		t.Fatalf("README.md's agent CLI reference differs from the commands' help; run: go generate ./agent")
	}
}
