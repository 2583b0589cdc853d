package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// configDir holds the DIR argument and --path flag shared by validate and
// bundle: the config files are under DIR/--path, and diagnostics name files
// relative to DIR (the repository root), as CI annotations need.
type configDir struct {
	root string
	path string
	eval evalFlags
}

func (c *configDir) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.path, "path", "", "config `path` inside DIR, slash-separated (default: DIR itself)")
	c.eval.register(fs)
}

func (c *configDir) setRoot(pos []string) error {
	switch len(pos) {
	case 0:
		c.root = "."
	case 1:
		c.root = pos[0]
	default:
		return fmt.Errorf("expected at most one directory, got %d arguments", len(pos))
	}
	if c.path != "" && (path.IsAbs(c.path) || strings.HasPrefix(path.Clean(c.path), "..")) {
		return fmt.Errorf("--path %q must be relative and stay inside DIR", c.path)
	}
	return nil
}

// load validates the config, its CUE under the --eval-* budget, and returns
// the result with every diagnostic's File made relative to the root.
func (c *configDir) load(ctx context.Context) (load.Result, error) {
	ev, err := c.eval.evaluator()
	if err != nil {
		return load.Result{}, err
	}
	dir := filepath.Join(c.root, filepath.FromSlash(c.path))
	res, err := ev.Dir(ctx, dir, load.Limits{})
	if err != nil {
		return res, err
	}
	if c.path != "" {
		for i, d := range res.Diagnostics {
			if d.File != "" {
				res.Diagnostics[i].File = path.Join(path.Clean(c.path), d.File)
			} else {
				res.Diagnostics[i].File = path.Clean(c.path)
			}
		}
	}
	return res, nil
}

// validateLong is agent validate's description.
const validateLong = `Validates the config files (*.yaml, *.yml, *.json, *.cue; hidden files and
directories skipped) under DIR/P against the schema and the semantic checks.
Exit 0 and a one-line summary when valid; exit 1 and one problem per line
(file:line:col: path: message, files relative to DIR) when not; exit 2 on
bad usage or an unreadable directory. A config with .cue files is evaluated
in a child process under --eval-timeout and --eval-memory; one that exceeds
them is invalid ("evaluation exceeded its time budget (20s)").`

func defineValidate(fs *pflag.FlagSet) body {
	var dir configDir
	dir.register(fs)
	format := fs.String("format", "text", "output `format`: text, json (\"valid\" and \"diagnostics\") or github (workflow commands that annotate a PR)")
	fs.StringVarP(format, "output", "o", "text", "same as --format")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) int {
		return validateDir(ctx, &dir, *format, pos, stdout, stderr)
	}
}

func validateDir(ctx context.Context, dir *configDir, format string, pos []string, stdout, stderr io.Writer) int {
	if err := dir.setRoot(pos); err != nil {
		fmt.Fprintf(stderr, "agent validate: %v\n", err)
		return exitUsage
	}
	format = strings.Replace(format, "table", "text", 1)
	switch format {
	case "text", "json", "github":
	default:
		fmt.Fprintf(stderr, "agent validate: unknown --format %q (text, json, github)\n", format)
		return exitUsage
	}
	res, err := dir.load(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "agent validate: %v\n", err)
		return exitUsage
	}
	if err := writeDiagnostics(stdout, format, res); err != nil {
		fmt.Fprintf(stderr, "agent validate: writing output: %v\n", err)
		return exitUsage
	}
	if len(res.Diagnostics) > 0 {
		if format != "json" {
			fmt.Fprintf(stderr, "agent validate: %d problem(s) in %s\n", len(res.Diagnostics), dir.display())
		}
		return exitInvalid
	}
	return exitOK
}

func (c *configDir) display() string {
	if c.path == "" {
		return c.root
	}
	return filepath.Join(c.root, filepath.FromSlash(c.path))
}

// writeDiagnostics writes res in the given format. A valid result prints a
// one-line summary (text, github) or {"valid":true,...} (json).
func writeDiagnostics(w io.Writer, format string, res load.Result) error {
	switch format {
	case "json":
		out := struct {
			Valid       bool                 `json:"valid"`
			Diagnostics []schemas.Diagnostic `json:"diagnostics"`
			Summary     *summary             `json:"summary,omitempty"`
		}{Valid: len(res.Diagnostics) == 0, Diagnostics: res.Diagnostics}
		if out.Diagnostics == nil {
			out.Diagnostics = []schemas.Diagnostic{}
		}
		if res.Config != nil {
			s := summarize(res.Config)
			out.Summary = &s
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "github":
		for _, d := range res.Diagnostics {
			if _, err := fmt.Fprintln(w, githubCommand(d)); err != nil {
				return err
			}
		}
	default:
		for _, d := range res.Diagnostics {
			if _, err := fmt.Fprintln(w, d.String()); err != nil {
				return err
			}
		}
	}
	if res.Config != nil {
		s := summarize(res.Config)
		_, err := fmt.Fprintf(w, "valid: %d upstream(s), %d route(s), %d policy(ies)\n", s.Upstreams, s.Routes, s.Policies)
		return err
	}
	return nil
}

type summary struct {
	Upstreams int `json:"upstreams"`
	Routes    int `json:"routes"`
	Policies  int `json:"policies"`
}

func summarize(c *schemas.Config) summary {
	return summary{Upstreams: len(c.Upstreams), Routes: len(c.Routes), Policies: len(c.Policies)}
}

// githubCommand formats d as a GitHub Actions ::error workflow command, with
// the escaping GitHub requires: % CR LF in the message; also : and , in
// property values.
func githubCommand(d schemas.Diagnostic) string {
	var props []string
	if d.File != "" {
		props = append(props, "file="+escapeProperty(d.File))
		if d.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", d.Line))
			if d.Column > 0 {
				props = append(props, fmt.Sprintf("col=%d", d.Column))
			}
		}
	}
	if d.Path != "" {
		props = append(props, "title="+escapeProperty(d.Path))
	}
	cmd := "::error"
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + escapeData(d.Message)
}

func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// schemaLong is agent schema's description.
const schemaLong = `Prints the schema of a config document: a JSON Schema (draft 2020-12) for
editors, or the CUE source the agent validates with. The semantic checks
(references, weights summing to 100, regex bounds) are not part of either.`

func defineSchema(fs *pflag.FlagSet) body {
	format := fs.String("format", "jsonschema", "schema `format`: jsonschema or cue")
	return func(_ context.Context, _ []string, stdout, stderr io.Writer) int {
		return printSchema(*format, stdout, stderr)
	}
}

func printSchema(format string, stdout, stderr io.Writer) int {
	switch format {
	case "jsonschema":
		b, err := load.JSONSchema()
		if err != nil {
			fmt.Fprintf(stderr, "agent schema: %v\n", err)
			return exitUsage
		}
		stdout.Write(b)
	case "cue":
		stdout.Write(schemas.CUESchema)
	default:
		fmt.Fprintf(stderr, "agent schema: unknown --format %q (jsonschema, cue)\n", format)
		return exitUsage
	}
	return exitOK
}

// bundleLong is agent bundle's description.
const bundleLong = `Validates the config under DIR/P and prints, as indented JSON, the bundle the
agent would hand to the gateway: apiVersion, version, source, createdAt,
digest and the config with defaults applied. Exit 1 with the problems on
stderr when the config is invalid.`

func defineBundle(fs *pflag.FlagSet) body {
	var dir configDir
	dir.register(fs)
	ver := fs.String("version", "", "bundle `version` (the agent uses the commit SHA; default: \"local-\" and 12 hex digits of the config digest)")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) int {
		return printBundle(ctx, &dir, *ver, pos, stdout, stderr)
	}
}

func printBundle(ctx context.Context, dir *configDir, ver string, pos []string, stdout, stderr io.Writer) int {
	if err := dir.setRoot(pos); err != nil {
		fmt.Fprintf(stderr, "agent bundle: %v\n", err)
		return exitUsage
	}
	res, err := dir.load(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "agent bundle: %v\n", err)
		return exitUsage
	}
	if len(res.Diagnostics) > 0 {
		for _, d := range res.Diagnostics {
			fmt.Fprintln(stderr, d.String())
		}
		fmt.Fprintf(stderr, "agent bundle: %d problem(s) in %s\n", len(res.Diagnostics), dir.display())
		return exitInvalid
	}
	src := schemas.Source{Path: dir.path}
	if abs, err := filepath.Abs(dir.root); err == nil {
		src.Repo = abs
	}
	b, err := schemas.NewBundle(ver, src, *res.Config, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "agent bundle: %v\n", err)
		return exitUsage
	}
	if b.Version == "" {
		b.Version = "local-" + strings.TrimPrefix(b.Digest, "sha256:")[:12]
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "agent bundle: encoding bundle: %v\n", err)
		return exitUsage
	}
	stdout.Write(append(out, '\n'))
	return exitOK
}
