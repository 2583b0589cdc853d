package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/agent/internal/diff"
	"github.com/gitgate/gitgate/agent/internal/gitsrc"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
	"github.com/gitgate/gitgate/schemas/load/budget"
)

// Exit codes of agent diff, as terraform plan -detailed-exitcode has them:
// 2 means "changes" only with --exit-code, so errors exit 1 even for usage.
const (
	diffExitSame    = 0
	diffExitError   = 1
	diffExitChanged = 2
)

// diffLong is agent diff's description.
const diffLong = `Prints the route-level plan that turns the OLD config into the NEW one:
routes, upstreams and policies created, updated and deleted, with the
changed fields. Secrets are masked.

With --repo, OLD and NEW are revisions of a local Git repository (HEAD~1, a
branch, a tag, a SHA or a unique SHA prefix), read from its object store.
With --base, OLD is REV (in --repo, or the repository around the current
directory) and NEW is the config directory in the working tree (P under the
repository's root unless NEW_DIR is given). A config path that does not
exist at a revision counts as an empty config, so a first commit that adds
the config shows everything as created.

Exit status: 0 done (or no changes with --exit-code), 2 changes with
--exit-code, 1 an error or an invalid config on either side.`

// diffOptions are the parsed flags and arguments of agent diff.
type diffOptions struct {
	repo, path, base, format string
	exitCode                 bool
	maxBytes                 int
	args                     []string
	eval                     evalFlags
}

// registerDiff registers agent diff's flags on fs. check, called with the
// positional arguments once fs is parsed, returns the options.
func registerDiff(fs *pflag.FlagSet) (check func(args []string) (diffOptions, error)) {
	o := &diffOptions{}
	fs.StringVar(&o.repo, "repo", "", "local Git repository: OLD and NEW are revisions in it")
	fs.StringVar(&o.path, "path", ".", "config path inside the repository (with --repo or --base)")
	fs.StringVar(&o.base, "base", "", "compare revision REV with the config in the working tree")
	fs.StringVar(&o.format, "format", "text", "output format: text, markdown or json")
	fs.BoolVar(&o.exitCode, "exit-code", false, "exit 2 when there are changes, 0 when there are none")
	fs.IntVar(&o.maxBytes, "max-bytes", 65536, "markdown size budget in bytes, 0 for none (GitHub comments hold 65536)")
	o.eval.register(fs)
	return func(args []string) (diffOptions, error) {
		o.args = args
		return o.validate(fs.Changed("path"))
	}
}

func (o diffOptions) validate(pathSet bool) (diffOptions, error) {
	switch o.format {
	case "text", "markdown", "json":
	default:
		return o, fmt.Errorf("unknown --format %q: want text, markdown or json", o.format)
	}
	switch {
	case o.base != "":
		if len(o.args) > 1 {
			return o, fmt.Errorf("with --base, give at most one argument (the NEW config directory), got %d", len(o.args))
		}
	case o.repo != "":
		if len(o.args) != 2 {
			return o, fmt.Errorf("with --repo, give two revisions OLD_REV NEW_REV, got %d argument(s)", len(o.args))
		}
	default:
		if pathSet {
			return o, errors.New("--path selects the config inside a repository: use it with --repo or --base")
		}
		if len(o.args) != 2 {
			return o, fmt.Errorf("give two config directories OLD_DIR NEW_DIR, got %d argument(s)", len(o.args))
		}
	}
	return o, nil
}

func defineDiff(fs *pflag.FlagSet) body {
	check := registerDiff(fs)
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) int {
		o, err := check(pos)
		if err != nil {
			fmt.Fprintf(stderr, "agent diff: %v\nRun 'agent diff --help' for usage.\n", err)
			return diffExitError
		}
		return diffConfigs(ctx, o, stdout, stderr)
	}
}

func diffConfigs(ctx context.Context, o diffOptions, stdout, stderr io.Writer) int {
	ev, err := o.eval.evaluator()
	if err != nil {
		fmt.Fprintf(stderr, "agent diff: %v\n", err)
		return diffExitError
	}
	oldCfg, newCfg, err := loadDiffSides(ctx, ev, o, stderr)
	if err != nil {
		var inv *schemas.InvalidError
		if errors.As(err, &inv) {
			// The side label is in err's text; every diagnostic follows on
			// its own line.
			fmt.Fprintf(stderr, "agent diff: %s\n", strings.SplitN(err.Error(), "\n", 2)[0])
			for _, d := range inv.Diagnostics {
				fmt.Fprintf(stderr, "  %s\n", d)
			}
			return diffExitError
		}
		fmt.Fprintf(stderr, "agent diff: %v\n", err)
		return diffExitError
	}
	plan := diff.Compute(oldCfg, newCfg)
	var out string
	switch o.format {
	case "markdown":
		out = plan.Markdown(o.maxBytes)
	case "json":
		b, err := plan.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "agent diff: encoding the plan: %v\n", err)
			return diffExitError
		}
		out = string(b)
	default:
		out = plan.Text()
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		fmt.Fprintf(stderr, "agent diff: writing the plan: %v\n", err)
		return diffExitError
	}
	if o.exitCode && !plan.Empty() {
		return diffExitChanged
	}
	return diffExitSame
}

// sideError labels an invalid side while keeping the *schemas.InvalidError
// reachable with errors.As.
type sideError struct {
	side string
	err  *schemas.InvalidError
}

func (e *sideError) Error() string {
	return fmt.Sprintf("%s is invalid (%d problem(s)):\n%s", e.side, len(e.err.Diagnostics), e.err.Error())
}

func (e *sideError) Unwrap() error { return e.err }

// loadDiffSides loads the OLD and NEW configs that o names, their CUE under
// ev's budget.
func loadDiffSides(ctx context.Context, ev *budget.Evaluator, o diffOptions, stderr io.Writer) (oldCfg, newCfg *schemas.Config, err error) {
	if o.base == "" && o.repo == "" {
		if oldCfg, err = loadDiffDir(ctx, ev, "OLD "+o.args[0], o.args[0]); err != nil {
			return nil, nil, err
		}
		newCfg, err = loadDiffDir(ctx, ev, "NEW "+o.args[1], o.args[1])
		return oldCfg, newCfg, err
	}
	repo, err := gitsrc.OpenLocal(o.repo)
	if err != nil {
		return nil, nil, err
	}
	root := repo.Root()
	if o.base != "" {
		newDir := filepath.Join(root, filepath.FromSlash(o.path))
		if len(o.args) == 1 {
			newDir = o.args[0]
		}
		oldCfg, _, err = loadDiffRev(ctx, ev, repo, o.base, o.path, stderr)
		if err != nil {
			return nil, nil, err
		}
		newCfg, err = loadDiffDir(ctx, ev, "NEW "+newDir, newDir)
		return oldCfg, newCfg, err
	}
	oldCfg, oldMissing, err := loadDiffRev(ctx, ev, repo, o.args[0], o.path, stderr)
	if err != nil {
		return nil, nil, err
	}
	newCfg, newMissing, err := loadDiffRev(ctx, ev, repo, o.args[1], o.path, stderr)
	if err != nil {
		return nil, nil, err
	}
	if oldMissing && newMissing {
		return nil, nil, fmt.Errorf("config path %q exists at neither %s nor %s: is --path right?", o.path, o.args[0], o.args[1])
	}
	return oldCfg, newCfg, nil
}

// loadDiffDir validates the config directory dir.
func loadDiffDir(ctx context.Context, ev *budget.Evaluator, side, dir string) (*schemas.Config, error) {
	res, err := ev.Dir(ctx, dir, load.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", side, err)
	}
	if len(res.Diagnostics) > 0 {
		return nil, &sideError{side: side, err: &schemas.InvalidError{Diagnostics: res.Diagnostics}}
	}
	return res.Config, nil
}

// loadDiffRev validates the config at configPath in revision rev, read from
// the object store. A config path absent at rev is an empty config; missing
// says so.
func loadDiffRev(ctx context.Context, ev *budget.Evaluator, repo *gitsrc.Local, rev, configPath string, stderr io.Writer) (cfg *schemas.Config, missing bool, err error) {
	sha, err := repo.Resolve(rev)
	if err != nil {
		return nil, false, err
	}
	dir := strings.Trim(path.Clean("/"+configPath), "/")
	found, err := repo.HasDir(sha, dir)
	if err != nil {
		return nil, false, err
	}
	if !found {
		fmt.Fprintf(stderr, "agent diff: config path %q does not exist at %s; comparing with an empty config\n", dir, rev)
		return &schemas.Config{}, true, nil
	}
	side := fmt.Sprintf("%s:%s (%s)", rev, dir, source.Short(sha))
	res, err := source.Validate(ctx, repo, sha, dir, ev, load.DefaultLimits)
	if err != nil {
		return nil, false, fmt.Errorf("loading %s: %w", side, err)
	}
	if len(res.Diagnostics) > 0 {
		return nil, false, &sideError{side: side, err: &schemas.InvalidError{Diagnostics: res.Diagnostics}}
	}
	return res.Config, false, nil
}
