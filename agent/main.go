// Command agent syncs a Git config repository to the colocated gitgate
// gateway, and validates, bundles and diffs config directories for CI.
//
// The command line is built with github.com/spf13/cobra, the library of
// kubectl, flux, helm and argocd: `--flag` style help with a synopsis and
// examples per command, shell completion and one exit-code convention.
//
//go:generate go test -run ^TestREADMECLIReference$ -update-readme .
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/schemas/cliargs"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// Exit codes of every agent command (agent diff keeps terraform's: see
// diffExitChanged). The README's "Exit codes" lists them.
const (
	exitOK          = 0 // done; the check passed
	exitFailed      = 1 // a check failed: invalid config, drift, rejected commit, an error
	exitUsage       = 2 // bad flags or arguments
	exitUnreachable = 3 // the running agent (its control socket) cannot be reached
)

// exitInvalid is the exit code of an invalid config (validate, bundle).
const exitInvalid = exitFailed

// body runs a command once cobra has parsed its flags: pos are the
// positional arguments. It returns the process exit code.
type body func(ctx context.Context, pos []string, stdout, stderr io.Writer) int

// command describes one subcommand: its help texts, its positional-argument
// check, and define, which registers its flags on fs and returns its body.
type command struct {
	use, short, long, example string
	args                      cobra.PositionalArgs
	define                    func(fs *pflag.FlagSet) body
	// usageExit is the exit code of bad flags or arguments (default 2).
	usageExit int
	// complete offers values for the positional arguments (optional).
	complete cobra.CompletionFunc
}

// codeError carries a command's non-zero exit code through cobra.
type codeError int

func (e codeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a flag or argument error with the exit code of its command.
type usageError struct {
	code int
	err  error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// noArgs rejects any positional argument.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// maxArgs accepts at most n positional arguments, named what.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("want at most %d %s, got %d", n, what, len(args))
		}
		return nil
	}
}

// newRootCmd builds the agent's command tree, writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "agent",
		Short: "gitgate's GitOps agent: sync a Git config repository to the gateway, and check configs in CI",
		Long: `gitgate's GitOps agent. "agent run" syncs a Git config repository to the
colocated gateway; the other commands talk to a running agent over its control
socket (status, history, sync, rollback, resume), query the fleet, or work on
config directories in CI (validate, bundle, diff, schema).

Exit codes: 0 ok, 1 a check failed (invalid config, drift, rejected commit,
an error), 2 usage error, 3 the running agent cannot be reached. agent diff
--exit-code exits 2 when there are changes, and 1 on any error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Without a command: the help on stderr, exit 2, as before cobra.
		RunE: func(c *cobra.Command, _ []string) error {
			c.SetOut(stderr)
			_ = c.Help()
			return codeError(exitUsage)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{code: usageExitOf(c), err: err}
	})
	for _, name := range commandOrder {
		root.AddCommand(newCmd(commands()[name]))
	}
	return root
}

// commandOrder is the order commands are registered in (cobra sorts
// them for help).
var commandOrder = []string{"validate", "schema", "bundle", "diff", "run", "status", "history", "sync", "rollback", "resume", "fleet", "version"}

// usageExits remembers each cobra command's usage exit code.
const usageExitAnnotation = "gitgate.usage-exit"

func usageExitOf(c *cobra.Command) int {
	if v, ok := c.Annotations[usageExitAnnotation]; ok && v == "1" {
		return 1
	}
	return exitUsage
}

func newCmd(spec command) *cobra.Command {
	c := &cobra.Command{
		Use:     spec.use,
		Short:   spec.short,
		Long:    spec.long,
		Example: spec.example,
		Args:    spec.args,
	}
	if spec.args == nil {
		c.Args = noArgs
	}
	if spec.usageExit == 1 {
		c.Annotations = map[string]string{usageExitAnnotation: "1"}
	}
	if spec.complete != nil {
		c.ValidArgsFunction = spec.complete
	} else {
		c.ValidArgsFunction = cobra.NoFileCompletions
	}
	run := spec.define(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if code := run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
			return codeError(code)
		}
		return nil
	}
	return c
}

// execute runs the agent command line args (without the program name) and
// returns the exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	if err := cliargs.CheckDashes(root, args); err != nil {
		// Before cobra: pflag would read -hold as -h and print the help.
		path, code := "agent", exitUsage
		if cmd, _, ferr := root.Find(args); ferr == nil {
			path, code = cmd.CommandPath(), usageExitOf(cmd)
		}
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return code
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ce codeError
	if errors.As(err, &ce) {
		return int(ce)
	}
	code := exitUsage
	var ue *usageError
	if errors.As(err, &ue) {
		code = ue.code
	} else if cmd != nil {
		code = usageExitOf(cmd)
	}
	path := "agent"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", path, err, path)
	return code
}

// runSub runs one subcommand with args, as `agent name args...` would: the
// entry point of the per-command tests.
func runSub(name string) func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return execute(ctx, append([]string{name}, args...), stdout, stderr)
	}
}

var (
	runValidate = runSub("validate")
	runSchema   = runSub("schema")
	runBundle   = runSub("bundle")
	runDiff     = runSub("diff")
	runStatus   = runSub("status")
	runHistory  = runSub("history")
	runSync     = runSub("sync")
	runRollback = runSub("rollback")
	runResume   = runSub("resume")
	runFleet    = runSub("fleet")
)

func main() {
	// The agent evaluates CUE files in a child process of itself.
	budget.ChildMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
