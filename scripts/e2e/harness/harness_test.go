package harness

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas/load"
)

func TestConfigYAMLValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		yaml   string
		errors bool
	}{
		{name: "catch-all only", yaml: ConfigYAML("http://127.0.0.1:9", "c0", nil)},
		{name: "with extra routes", yaml: ConfigYAML("http://127.0.0.1:9", "c1", map[string]string{"/r1": "c1", "/r2": "c2"})},
		{name: "typo is rejected", yaml: InvalidYAML("http://127.0.0.1:9"), errors: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := load.Files([]load.File{{Path: "config.yaml", Data: []byte(tt.yaml)}}, load.Limits{})
			if got := len(res.Diagnostics) > 0; got != tt.errors {
				t.Fatalf("diagnostics = %v, want errors: %v\n%s", res.Diagnostics, tt.errors, tt.yaml)
			}
			if tt.errors && res.Diagnostics[0].Line == 0 {
				t.Errorf("diagnostic without a line: %+v", res.Diagnostics[0])
			}
		})
	}
}

func line(js string) string {
	return fmt.Sprintf("%08x %d %s\n", crc32.ChecksumIEEE([]byte(js)), len(js), js)
}

func TestCheckHistory(t *testing.T) {
	t.Parallel()
	good := line(`{"sha":"a","result":"applied"}`) + line(`{"sha":"b","result":"no-op"}`)
	tests := []struct {
		name  string
		data  string
		lines int
		bad   int
	}{
		{name: "empty", data: "", lines: 0, bad: 0},
		{name: "clean", data: good, lines: 2, bad: 0},
		{name: "torn tail", data: good + line(`{"sha":"c"}`)[:10], lines: 2, bad: 1},
		{name: "checksum mismatch", data: strings.Replace(good, `"a"`, `"x"`, 1), lines: 1, bad: 1},
		{name: "length mismatch", data: "00000000 3 {}\n" + good, lines: 2, bad: 1},
		{name: "not json", data: line(`{"sha":`) + good, lines: 2, bad: 1},
		{name: "no fields", data: "garbage\n", lines: 0, bad: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := CheckHistory([]byte(tt.data))
			if rep.Lines != tt.lines || len(rep.Bad) != tt.bad {
				t.Errorf("CheckHistory = %d lines, bad %q; want %d lines, %d bad", rep.Lines, rep.Bad, tt.lines, tt.bad)
			}
		})
	}
}

func FuzzCheckHistory(f *testing.F) {
	f.Add([]byte(line(`{"sha":"a"}`)))
	f.Add([]byte("garbage\n\n"))
	f.Add([]byte("00000000 2 {}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := CheckHistory(data)
		if rep.Lines < 0 || rep.Lines > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d lines from %d newlines", rep.Lines, bytes.Count(data, []byte("\n")))
		}
	})
}

func TestSign(t *testing.T) {
	t.Parallel()
	// Test vector from GitHub's "Validating webhook deliveries" docs.
	got := Sign("It's a Secret to Everybody", []byte("Hello, World!"))
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestRepoCommitAndUpstream(t *testing.T) {
	t.Parallel()
	r, err := NewRepo(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.WriteCommit("a.yaml", "x: 1\n", "first")
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.WriteCommit("a.yaml", "x: 2\n", "second")
	if err != nil {
		t.Fatal(err)
	}
	if first == second || len(second) != 40 {
		t.Fatalf("commits %q then %q", first, second)
	}
	if head, err := r.Head(); err != nil || head != second {
		t.Fatalf("Head = %q, %v; want %q", head, err, second)
	}
	up := NewUpstream()
	defer up.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, up.URL, nil)
	resp, err := up.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("upstream answered %d", resp.StatusCode)
	}
}

// TestFreeAddrNeverTwice: FreeAddr closes the port it checked, so without
// its memory two stacks of one fleet could be given the same port (seen:
// two agents of u-fleet-20 on one webhook port).
func TestFreeAddrNeverTwice(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 2000 {
		a, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
}
