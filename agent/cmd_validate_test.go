package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

const vcValidConfig = `upstreams:
  web:
    targets: [http://127.0.0.1:9001]
routes:
  site:
    match: {path: /}
    backends: [{upstream: web, weight: 100}]
`

const vcInvalidConfig = `upstreams:
  web:
    targets: [http://127.0.0.1:9001]
routes:
  site:
    match: {path: /}
    backends:
      - upstream: web
        weigth: 100
`

// configRepo writes a config repository with the config under conf/.
func configRepo(t *testing.T, config string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "conf", "gw.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func invokeCmd(t *testing.T, fn func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fn(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	valid, invalid := configRepo(t, vcValidConfig), configRepo(t, vcInvalidConfig)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings of stdout
		noStdout string   // must not appear
	}{
		{name: "valid text", args: []string{valid, "--path", "conf"}, code: 0,
			stdout: []string{"valid: 1 upstream(s), 1 route(s), 0 policy(ies)"}},
		{name: "flags before dir", args: []string{"--path=conf", valid}, code: 0, stdout: []string{"valid:"}},
		{name: "invalid text names file relative to root", args: []string{invalid, "--path", "conf"}, code: 1,
			stdout: []string{`conf/gw.yaml:9:9: routes.site.backends[0].weigth: unknown field "weigth" (did you mean "weight"?)`}, noStdout: "valid:"},
		{name: "invalid github", args: []string{invalid, "--path", "conf", "--format", "github"}, code: 1,
			stdout: []string{`::error file=conf/gw.yaml,line=9,col=9,title=routes.site.backends[0].weigth::unknown field "weigth"`}},
		{name: "config dir as DIR", args: []string{filepath.Join(invalid, "conf")}, code: 1, stdout: []string{"gw.yaml:9:9: "}},
		{name: "missing dir", args: []string{filepath.Join(valid, "nope")}, code: 2},
		{name: "bad format", args: []string{valid, "--format", "xml"}, code: 2},
		{name: "escaping path", args: []string{valid, "--path", "../x"}, code: 2},
		{name: "two dirs", args: []string{valid, invalid}, code: 2},
		{name: "help", args: []string{"--help"}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := invokeCmd(t, runValidate, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if tt.noStdout != "" && strings.Contains(out, tt.noStdout) {
				t.Errorf("stdout has %q:\n%s", tt.noStdout, out)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		code   int
		valid  bool
		diags  int
	}{
		{"valid", vcValidConfig, 0, true, 0},
		{"invalid", vcInvalidConfig, 1, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, _ := invokeCmd(t, runValidate, configRepo(t, tt.config), "--path", "conf", "--format", "json")
			if code != tt.code {
				t.Fatalf("exit %d, want %d", code, tt.code)
			}
			var got struct {
				Valid       *bool                `json:"valid"`
				Diagnostics []schemas.Diagnostic `json:"diagnostics"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if got.Valid == nil || *got.Valid != tt.valid || len(got.Diagnostics) != tt.diags {
				t.Fatalf("got %s", out)
			}
			if !strings.Contains(out, `"diagnostics": [`) {
				t.Errorf("diagnostics must be a list, also when empty: %s", out)
			}
		})
	}
}

func TestGithubCommandEscaping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    schemas.Diagnostic
		want string
	}{
		{"full", schemas.Diagnostic{File: "a,b:c.yaml", Line: 3, Column: 4, Path: "routes.x", Message: "50% off\nnext: line"},
			"::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=routes.x::50%25 off%0Anext: line"},
		{"no position", schemas.Diagnostic{Message: "no config files"}, "::error::no config files"},
		{"file without line", schemas.Diagnostic{File: "big.yaml", Message: "too big"}, "::error file=big.yaml::too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := githubCommand(tt.d); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSchemaCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"jsonschema default", nil, 0, `"$defs"`},
		{"jsonschema", []string{"--format", "jsonschema"}, 0, `"additionalProperties": false`},
		{"cue", []string{"--format", "cue"}, 0, "#Route: {"},
		{"bad format", []string{"--format", "yaml"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, _ := invokeCmd(t, runSchema, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d", code, tt.code)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("output lacks %q", tt.want)
			}
			if strings.Contains(tt.want, "$defs") && !json.Valid([]byte(out)) {
				t.Fatal("JSON Schema output is not valid JSON")
			}
		})
	}
}

func TestBundleCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := invokeCmd(t, runBundle, configRepo(t, vcValidConfig), "--path", "conf", "--version", "abc123")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var b schemas.Bundle
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil {
		t.Fatalf("printed bundle does not verify: %v", err)
	}
	if b.Version != "abc123" || b.Source.Path != "conf" {
		t.Errorf("version %q path %q", b.Version, b.Source.Path)
	}
	if r := b.Config.Routes["site"]; r.Timeout.D() != schemas.DefaultRouteTimeout {
		t.Errorf("defaults not applied: timeout %v", r.Timeout.D())
	}

	code, out, _ = invokeCmd(t, runBundle, configRepo(t, vcValidConfig), "--path", "conf")
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || !strings.HasPrefix(b.Version, "local-") {
		t.Errorf("default version: exit %d, version %q, err %v", code, b.Version, err)
	}

	code, out, errOut = invokeCmd(t, runBundle, configRepo(t, vcInvalidConfig), "--path", "conf")
	if code != 1 || out != "" || !strings.Contains(errOut, "conf/gw.yaml:9:9") {
		t.Errorf("invalid config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
