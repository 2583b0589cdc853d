package cliargs

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestCheckDashes(t *testing.T) {
	t.Parallel()
	// A tree per case: cobra merges flag sets lazily, so reading one tree
	// from parallel subtests races (the agent builds one per run).
	newRoot := func() *cobra.Command {
		root := &cobra.Command{Use: "agent"}
		rb := &cobra.Command{Use: "rollback", Run: func(*cobra.Command, []string) {}}
		rb.Flags().Bool("hold", false, "")
		rb.Flags().String("state-dir", "", "")
		rb.Flags().StringP("output", "o", "table", "")
		rb.Flags().IntP("n", "n", 20, "")
		root.AddCommand(rb)
		return root
	}
	tests := []struct {
		name string
		args []string
		want string // the Name of the error; "" for none
	}{
		{"double dashes", []string{"rollback", "--hold", "--state-dir", "/x"}, ""},
		{"single-dash bool", []string{"rollback", "-hold"}, "hold"},
		{"single-dash with value", []string{"rollback", "-state-dir=/x"}, "state-dir"},
		{"single-dash help", []string{"rollback", "-help"}, "help"},
		{"shorthand with value", []string{"rollback", "-ojson", "-n5"}, ""},
		{"one-letter flag", []string{"rollback", "-n", "5"}, ""},
		{"after --", []string{"rollback", "--", "-hold"}, ""},
		{"positional", []string{"rollback", "3f2a9c1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckDashes(newRoot(), tt.args)
			var sd *SingleDashError
			got := ""
			if errors.As(err, &sd) {
				got = sd.Name
			}
			if got != tt.want {
				t.Fatalf("CheckDashes(%q) = %v, want a single-dash error for %q", tt.args, err, tt.want)
			}
		})
	}
}
