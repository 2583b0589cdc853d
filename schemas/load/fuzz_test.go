package load

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedCorpus adds every YAML file of testdata/invalid and examples/ to f.
func seedCorpus(f *testing.F) {
	for _, glob := range []string{"testdata/invalid/*/*.yaml", "../../examples/*/*.yaml"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzLoad feeds random YAML to Files: it must not panic, must return
// either a config or diagnostics, and must finish quickly for small input.
func FuzzLoad(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		res := Files([]File{{Path: "fuzz.yaml", Data: data}}, Limits{MaxFileBytes: 64 << 10})
		if (res.Config == nil) == (len(res.Diagnostics) == 0) {
			t.Fatalf("want exactly one of config or diagnostics, got %v and %d", res.Config != nil, len(res.Diagnostics))
		}
		for _, d := range res.Diagnostics {
			if d.Message == "" {
				t.Fatalf("diagnostic without message: %+v", d)
			}
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Fatalf("took %v on %d bytes", el, len(data))
		}
	})
}

// FuzzCheck runs the semantic checks, with positions, on configs that pass
// the schema; it must not panic and must report only located diagnostics.
func FuzzCheck(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs, diags := parse(File{Path: "fuzz.yaml", Data: data})
		if len(diags) > 0 {
			return
		}
		ctx, defs := newContext()
		idx := newPosIndex(srcs)
		entries, diags := collect(ctx, srcs, idx)
		if len(diags) > 0 {
			return
		}
		cfg, diags := validateEntries(context.Background(), ctx, defs, entries, idx)
		if len(diags) > 0 {
			return
		}
		for _, d := range idx.locate(check(cfg)) {
			if d.Message == "" || d.Path == "" {
				t.Fatalf("incomplete diagnostic: %+v", d)
			}
		}
	})
}

// FuzzPrescan checks that the pre-scan never panics.
func FuzzPrescan(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		prescan("f.yaml", data, true)
		prescan("f.json", data, false)
	})
}
