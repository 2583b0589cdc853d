package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas/load"
)

// TestMain lets this test binary serve as the evaluation child.
func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}

// small is the budget of the tests: it keeps a bomb cheap for the machine.
var small = Budget{Timeout: 3 * time.Second, Memory: 256 << 20}

// stringDoubling doubles a 16-byte string 26 times: 1 GiB, in hidden
// fields that validate.
func stringDoubling() string {
	var b strings.Builder
	b.WriteString("_a0: \"0123456789abcdef\"\n")
	for n := 1; n <= 26; n++ {
		fmt.Fprintf(&b, "_a%d: _a%d + _a%d\n", n, n-1, n-1)
	}
	return b.String()
}

// Bombs of the issue, each a few lines of CUE.
var bombs = []struct {
	name string
	cue  string
	// want are the resources that may run out first.
	want []Resource
}{
	{"string doubling", stringDoubling(), []Resource{ResourceMemory}},
	{"list.Range comprehension", "import \"list\"\n\n_x: [for i in list.Range(0, 50000000, 1) {i}]\n", []Resource{ResourceMemory, ResourceTime}},
	{"nested comprehensions", "_l: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" +
		"_x: [for a in _l for b in _l for c in _l for d in _l for e in _l for f in _l " +
		"for g in _l for h in _l for i in _l for j in _l for k in _l for m in _l {a}]\n", []Resource{ResourceTime, ResourceMemory}},
	{"nested comprehensions, nothing kept", "_l: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" +
		"_x: [for a in _l for b in _l for c in _l for d in _l for e in _l for f in _l " +
		"for g in _l for h in _l for i in _l for j in _l if false {a}]\n", []Resource{ResourceTime}},
}

func exampleFiles(t *testing.T, name string) []load.File {
	t.Helper()
	return readDir(t, filepath.Join("..", "..", "..", "examples", name))
}

func readDir(t *testing.T, dir string) []load.File {
	t.Helper()
	files, diags, err := load.ReadDir(dir, load.Limits{})
	if err != nil || len(diags) > 0 {
		t.Fatalf("reading %s: %v %v", dir, err, diags)
	}
	return files
}

// TestBombsExceedTheBudget: each bomb of the issue comes back as a budget
// diagnostic on the .cue file, and the parent never grows with it.
func TestBombsExceedTheBudget(t *testing.T) {
	ev := New(small)
	for _, tt := range bombs {
		t.Run(tt.name, func(t *testing.T) {
			files := append(exampleFiles(t, "basic"), load.File{Path: "gen/bomb.cue", Data: []byte(tt.cue)})
			res, err := ev.Files(context.Background(), files, load.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Config != nil || len(res.Diagnostics) != 1 {
				t.Fatalf("want one diagnostic and no config, got %d diagnostic(s): %v", len(res.Diagnostics), res.Diagnostics)
			}
			d := res.Diagnostics[0]
			if d.File != "gen/bomb.cue" {
				t.Errorf("diagnostic names %q, want gen/bomb.cue", d.File)
			}
			var ok bool
			for _, r := range tt.want {
				limit := small.Timeout.String()
				if r == ResourceMemory {
					limit = "256 MiB"
				}
				ok = ok || strings.HasPrefix(d.Message, fmt.Sprintf("evaluation exceeded its %s budget (%s)", r, limit))
			}
			if !ok {
				t.Errorf("message %q does not say that the %v budget ran out", d.Message, tt.want)
			}
		})
	}
}

// TestChildResultIsTheInProcessResult: valid and invalid configs with CUE
// files give, through the child, exactly what load gives in process.
func TestChildResultIsTheInProcessResult(t *testing.T) {
	t.Parallel()
	ev := New(Budget{})
	cases := []struct {
		name  string
		files []load.File
	}{
		{"basic with a CUE file", append(exampleFiles(t, "basic"), load.File{Path: "extra.cue", Data: []byte(
			"routes: extra: {match: path: \"/extra\", backends: [{upstream: \"api\", weight: 100}]}\n")})},
		{"canary in CUE and YAML", append(exampleFiles(t, "canary"), load.File{Path: "timeouts.cue", Data: []byte(
			"_t: \"5s\"\nroutes: [string]: {}\n")})},
		{"auth", append(exampleFiles(t, "auth"), load.File{Path: "x.cue", Data: []byte("policies: {}\n")})},
		{"invalid CUE", append(exampleFiles(t, "basic"), load.File{Path: "bad.cue", Data: []byte(
			"routes: broken: {match: path: 12, backend: []}\n")})},
		{"the cue-error case of load's corpus", readDir(t, filepath.Join("..", "testdata", "invalid", "cue-error"))},
		{"CUE syntax error", []load.File{{Path: "a.cue", Data: []byte("routes: {\n")}}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := load.Files(tt.files, load.Limits{})
			got, err := ev.Files(context.Background(), tt.files, load.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			// The bundle is built from the config's JSON: nil and empty
			// maps of the Go value are the same config.
			gotJSON, _ := json.Marshal(got.Config)
			wantJSON, _ := json.Marshal(want.Config)
			if string(gotJSON) != string(wantJSON) || (got.Config == nil) != (want.Config == nil) {
				t.Errorf("config through the child:\n%s\nin process:\n%s", gotJSON, wantJSON)
			}
			if !reflect.DeepEqual(got.Diagnostics, want.Diagnostics) {
				t.Errorf("diagnostics through the child:\n%v\nin process:\n%v", got.Diagnostics, want.Diagnostics)
			}
		})
	}
}

// TestDataOnlyStaysInProcess: YAML and JSON are data and never start a
// child: a budget no child could meet still validates them.
func TestDataOnlyStaysInProcess(t *testing.T) {
	t.Parallel()
	ev := New(Budget{Timeout: time.Nanosecond, Memory: 1})
	res, err := ev.Files(context.Background(), exampleFiles(t, "basic"), load.Limits{})
	if err != nil || len(res.Diagnostics) > 0 || res.Config == nil {
		t.Fatalf("examples/basic: err %v, diagnostics %v", err, res.Diagnostics)
	}
	res, err = ev.Files(context.Background(), []load.File{{Path: "a.cue", Data: []byte("routes: {}\n")}}, load.Limits{})
	if err != nil || len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].Message, "time budget (1ns)") {
		t.Fatalf("a CUE file under a 1ns budget: err %v, diagnostics %v", err, res.Diagnostics)
	}
}

// TestCanceledIsAnError: an evaluation stopped because its caller gave up
// is an error to retry, not a verdict on the config.
func TestCanceledIsAnError(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	files := []load.File{{Path: "bomb.cue", Data: []byte(bombs[3].cue)}}
	res, err := New(Budget{Timeout: time.Minute}).Files(ctx, files, load.Limits{})
	if !errors.Is(err, context.Canceled) || len(res.Diagnostics) > 0 {
		t.Fatalf("err %v, diagnostics %v; want context.Canceled and none", err, res.Diagnostics)
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1GiB", 1 << 30, false},
		{"512 MiB", 512 << 20, false},
		{"2g", 2 << 30, false},
		{"64MB", 64 << 20, false},
		{"1073741824", 1 << 30, false},
		{"100B", 100, false},
		{"1.5GiB", 0, true},
		{"-1GiB", 0, true},
		{"GiB", 0, true},
		{"", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range cases {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
			}
			if err == nil && got > 0 {
				if back, _ := ParseBytes(FormatBytes(got)); back != got {
					t.Errorf("FormatBytes(%d) = %q does not parse back", got, FormatBytes(got))
				}
			}
		})
	}
}
