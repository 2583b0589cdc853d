package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

var update = flag.Bool("update", false, "rewrite the expected.golden files of testdata/invalid")

// setups add to a case what cannot live in git: a symlink, a file over the
// size limit.
var setups = map[string]func(t *testing.T, dir string){
	"symlink": func(t *testing.T, dir string) {
		target := filepath.Join(t.TempDir(), "outside.yaml")
		if err := os.WriteFile(target, []byte("routes: {}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "linked.yaml")); err != nil {
			t.Fatal(err)
		}
	},
	// A route whose hosts list is one element over maxItems (CUE's
	// unification of a list is quadratic in its length), another whose
	// header set is one key over it, and a third whose lists are each
	// under it but hold more than maxEntryNodes items together.
	"too-long-list": func(t *testing.T, dir string) {
		var b strings.Builder
		list := func(n int, prefix string) {
			b.WriteByte('[')
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s%d.example", prefix, i)
			}
			b.WriteString("]\n")
		}
		b.WriteString("routes:\n  web:\n    match:\n      path: /\n      hosts: ")
		list(maxItems+1, "h")
		b.WriteString("    backends: [{upstream: app, weight: 100}]\n  api:\n    match: {path: /api}\n    backends: [{upstream: app, weight: 100}]\n    requestHeaders:\n      set:\n")
		for i := range maxItems + 1 {
			fmt.Fprintf(&b, "        X-H%d: v\n", i)
		}
		b.WriteString("  wide:\n    match:\n      path: /wide\n      hosts: ")
		list(maxItems, "w")
		b.WriteString("    methods: ")
		list(maxEntryNodes-maxItems, "m")
		b.WriteString("    backends: [{upstream: app, weight: 100}]\n")
		if err := os.WriteFile(filepath.Join(dir, "routes.yaml"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	},
	// A route name one byte over maxKeyBytes, and one at it (valid).
	"too-long-key": func(t *testing.T, dir string) {
		routes := "routes:\n  " + strings.Repeat("r", maxKeyBytes+1) + ":\n    match: {path: /a}\n    backends: [{upstream: app, weight: 100}]\n" +
			"  " + strings.Repeat("s", maxKeyBytes) + ":\n    match: {path: /b}\n    backends: [{upstream: app, weight: 100}]\n"
		if err := os.WriteFile(filepath.Join(dir, "routes.yaml"), []byte(routes), 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"oversized": func(t *testing.T, dir string) {
		big := bytes.Repeat([]byte("# padding\n"), (1<<20)/10+1)
		if err := os.WriteFile(filepath.Join(dir, "big.yaml"), big, 0o600); err != nil {
			t.Fatal(err)
		}
	},
}

// TestInvalidCorpus checks the exact diagnostics, in text form, of every
// case of testdata/invalid against its expected.golden. Each case is copied
// to a temporary directory first so that setups can add to it.
func TestInvalidCorpus(t *testing.T) {
	t.Parallel()
	cases, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("corpus has %d cases, expected at least 20", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			t.Parallel()
			src := filepath.Join("testdata", "invalid", c.Name())
			dir := copyConfig(t, src)
			if setup := setups[c.Name()]; setup != nil {
				setup(t, dir)
			}
			res, err := Dir(dir, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Diagnostics) == 0 {
				t.Fatal("config validated; the case must be invalid")
			}
			if res.Config != nil {
				t.Error("Config is set together with diagnostics")
			}
			var got strings.Builder
			for _, d := range res.Diagnostics {
				if d.Message == "" {
					t.Errorf("diagnostic without a message: %+v", d)
				}
				got.WriteString(d.String())
				got.WriteByte('\n')
			}
			golden := filepath.Join(src, "expected.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInvalidCorpus -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("diagnostics differ from %s\n got:\n%s\nwant:\n%s", golden, got.String(), want)
			}
		})
	}
}

// copyConfig copies the config files of src into a new temporary directory.
func copyConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !configExt(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestExamplesValidate loads every config under examples/ and checks that
// it validates and carries its defaults.
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if !holdsConfig(t, dir) {
			continue // kubernetes manifests, CI workflows
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			res, err := Dir(dir, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Diagnostics {
				t.Error(d)
			}
			if res.Config == nil || len(res.Config.Routes) == 0 {
				t.Fatal("no routes loaded")
			}
			for name, r := range res.Config.Routes {
				if r.Timeout == 0 || r.Match.PathType == "" {
					t.Errorf("route %s: defaults not applied: %+v", name, r)
				}
			}
		})
	}
	if n < 3 {
		t.Fatalf("found %d example configs, want at least basic, canary, auth", n)
	}
}

// holdsConfig reports whether a YAML file of dir has a top-level upstreams,
// routes or policies key.
func holdsConfig(t *testing.T, dir string) bool {
	cfgs, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, c := range cfgs {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, key := range []string{"upstreams:", "routes:", "policies:"} {
				if strings.HasPrefix(line, key) {
					return true
				}
			}
		}
	}
	return false
}

func TestFilesFormatsAndMerge(t *testing.T) {
	t.Parallel()
	up := File{Path: "up.json", Data: []byte(`{"upstreams": {"web": {"targets": ["http://127.0.0.1:1"]}}}`)}
	tests := []struct {
		name   string
		files  []File
		routes int
		diag   string // substring of the first diagnostic; "" means valid
	}{
		{name: "yaml json cue together", files: []File{up,
			{Path: "r.yaml", Data: []byte("routes:\n  a:\n    match: {path: /a}\n    backends: [{upstream: web, weight: 100}]\n")},
			{Path: "r.cue", Data: []byte("package gitgate\n\n_w: 100\nroutes: b: {match: path: \"/b\", backends: [{upstream: \"web\", weight: _w}]}\n")}}, routes: 2},
		{name: "same route in two files, equal parts merge", files: []File{up,
			{Path: "a.yaml", Data: []byte("routes:\n  a:\n    match: {path: /a}\n")},
			{Path: "b.yaml", Data: []byte("routes:\n  a:\n    match: {path: /a}\n    backends: [{upstream: web, weight: 100}]\n")}}, routes: 1},
		{name: "multi-document yaml with trailing separator", files: []File{
			{Path: "all.yaml", Data: []byte("upstreams:\n  web: {targets: [\"http://127.0.0.1:1\"]}\n---\nroutes:\n  a:\n    match: {path: /a}\n    backends: [{upstream: web, weight: 100}]\n---\n")}}, routes: 1},
		{name: "hidden and foreign files are ignored", files: []File{up,
			{Path: ".github/workflows/ci.yml", Data: []byte("on: push\n")},
			{Path: "README.md", Data: []byte("# not config")}}, routes: 0},
		{name: "no config files", files: []File{{Path: "README.md", Data: []byte("x")}}, diag: "no config files"},
		{name: "document is a list", files: []File{{Path: "l.yaml", Data: []byte("- a\n- b\n")}}, diag: "must be a mapping"},
		{name: "section is a list", files: []File{{Path: "l.yaml", Data: []byte("routes: [a]\n")}}, diag: "routes must be a mapping"},
		{name: "utf-8 bom is accepted", files: []File{{Path: "u.yaml", Data: append([]byte("\xef\xbb\xbf"), up.Data...)}}, routes: 0},
		{name: "total size bound", files: []File{up, {Path: "z.yaml", Data: bytes.Repeat([]byte("#\n"), 600)}}, diag: "total more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := Limits{}
			if strings.Contains(tt.name, "total") {
				lim = Limits{MaxFileBytes: 2000, MaxTotalBytes: 1000}
			}
			res := Files(tt.files, lim)
			if tt.diag == "" {
				if len(res.Diagnostics) > 0 {
					t.Fatalf("unexpected diagnostics: %v", res.Diagnostics)
				}
				if len(res.Config.Routes) != tt.routes {
					t.Fatalf("got %d routes, want %d", len(res.Config.Routes), tt.routes)
				}
				return
			}
			if len(res.Diagnostics) == 0 || !strings.Contains(res.Diagnostics[0].Message, tt.diag) {
				t.Fatalf("got %v, want a diagnostic containing %q", res.Diagnostics, tt.diag)
			}
			if res.Err() == nil {
				t.Fatal("Err() is nil for an invalid result")
			}
		})
	}
}

// TestSecretsNotEchoed checks that values that may be secrets never appear
// in diagnostics.
func TestSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	res, err := Dir("testdata/invalid/plain-api-key", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := Dir("testdata/invalid/hs256-inline-secret", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(append(res.Diagnostics, res2.Diagnostics...))
	for _, secret := range []string{"s3cr3t-plain-key", "my-hmac-secret-in-clear"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("diagnostics echo the secret %q: %s", secret, b)
		}
	}
}

func TestDirErrors(t *testing.T) {
	t.Parallel()
	if _, err := Dir(filepath.Join(t.TempDir(), "missing"), Limits{}); err == nil {
		t.Error("missing directory: no error")
	}
	f := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(f, Limits{}); err == nil {
		t.Error("file given as directory: no error")
	}
}

func TestFormatPathRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		segs []string
		want string
	}{
		{"plain", []string{"routes", "api", "backends", "[0]", "weight"}, "routes.api.backends[0].weight"},
		{"dotted key", []string{"routes", "v1.api", "match"}, `routes["v1.api"].match`},
		{"quote in key", []string{"policies", `a"b`}, `policies["a\"b"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := formatPath(tt.segs)
			if got != tt.want {
				t.Fatalf("formatPath = %q, want %q", got, tt.want)
			}
			back := segments(got)
			if strings.Join(back, "\x00") != strings.Join(tt.segs, "\x00") {
				t.Fatalf("segments(%q) = %q, want %q", got, back, tt.segs)
			}
		})
	}
}

// validConfig is a small valid config used as the fuzz seed's base.
var _ = schemas.Diagnostic{}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema     string                     `json:"$schema"`
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
			Required             []string                   `json:"required"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.Contains(doc.Schema, "2020-12") {
		t.Errorf("$schema = %q", doc.Schema)
	}
	for _, p := range []string{"upstreams", "routes", "policies"} {
		if _, ok := doc.Properties[p]; !ok {
			t.Errorf("no top-level property %q", p)
		}
	}
	backend := doc.Defs["Backend"]
	if _, ok := backend.Properties["weight"]; !ok {
		t.Errorf("Backend has no weight: %s", b)
	}
	if backend.AdditionalProperties == nil || *backend.AdditionalProperties {
		t.Error("Backend is not closed (additionalProperties false), so typos pass")
	}
	if _, ok := doc.Defs["Policy"].Properties["jwt"]; !ok {
		t.Error("Policy has no jwt")
	}
}

// stopAfter is a context whose Err reports Canceled from its n-th call:
// a deadline that passes in the middle of a validation, deterministically.
type stopAfter struct {
	context.Context
	calls atomic.Int64
	n     int64
}

func (c *stopAfter) Err() error {
	if c.calls.Add(1) >= c.n {
		return context.Canceled
	}
	return nil
}

// TestFilesContextStops: a validation stops when its context ends, before
// the files are parsed or in the middle of the entries, with the
// context's error and no result; with a context that does not end it is
// Files.
func TestFilesContextStops(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("upstreams:\n  app:\n    targets: [\"http://app:8080\"]\nroutes:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  r%d:\n    match: {path: /r%d}\n    backends: [{upstream: app, weight: 100}]\n", i, i)
	}
	files := []File{{Path: "config.yaml", Data: []byte(b.String())}}
	want := Files(files, Limits{})
	if len(want.Diagnostics) != 0 || len(want.Config.Routes) != 1000 {
		t.Fatalf("Files: %d routes, %v", len(want.Config.Routes), want.Diagnostics)
	}
	got, err := FilesContext(context.Background(), files, Limits{})
	if err != nil || len(got.Config.Routes) != 1000 {
		t.Fatalf("FilesContext: %v, %v", got, err)
	}
	for _, n := range []int64{1, 2, 3, 10} {
		res, err := FilesContext(&stopAfter{Context: context.Background(), n: n}, files, Limits{})
		if !errors.Is(err, context.Canceled) || res.Config != nil || len(res.Diagnostics) != 0 {
			t.Errorf("stopped at the %d-th check: %v, config %v, %d diagnostics", n, err, res.Config != nil, len(res.Diagnostics))
		}
	}
}
