package clidoc

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestMarkdownAndSplice(t *testing.T) {
	t.Parallel()
	root := &cobra.Command{Use: "tool", Short: "do things"}
	sub := &cobra.Command{Use: "pick [<sha>]", Short: "pick a commit", Example: "  tool pick abc123", Run: func(*cobra.Command, []string) {}}
	sub.Flags().Bool("hold", false, "keep it")
	root.AddCommand(sub)
	md := Markdown(root)
	for _, want := range []string{"#### `tool pick`", "tool pick [<sha>] [flags]", "--hold", "tool pick abc123", "#### `tool completion`"} {
		if !strings.Contains(md, want) {
			t.Errorf("reference lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "#### `tool completion bash`") {
		t.Errorf("reference lists cobra's per-shell completion commands")
	}
	tests := []struct {
		name    string
		doc     string
		wantErr bool
		want    string
	}{
		{"replaces between markers", "a\n" + Begin("tool") + "\nstale\n" + End("tool") + "\nb", false, "a\n" + Begin("tool") + "\n\nNEW\n" + End("tool") + "\nb"},
		{"no markers", "a\nb", true, ""},
		{"markers reversed", End("tool") + Begin("tool"), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := Splice(tt.doc, "tool", "NEW\n")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Splice = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
