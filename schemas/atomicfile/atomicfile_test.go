package atomicfile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/schemas/atomicfile"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		old     []byte // nil: no file before
		data    []byte
		perm    fs.FileMode
		wantErr bool
		// dirMode, when set, makes the directory read-only for the write.
		dirMode fs.FileMode
	}{
		{name: "new file", data: []byte("one"), perm: 0o600},
		{name: "replaces", old: []byte("old content"), data: []byte("new"), perm: 0o600},
		{name: "mode is perm", data: []byte("x"), perm: 0o640},
		{name: "empty data", old: []byte("old"), data: []byte{}, perm: 0o600},
		{name: "unwritable directory keeps the old file", old: []byte("old"), data: []byte("new"), perm: 0o600, dirMode: 0o500, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.dirMode != 0 && os.Geteuid() == 0 {
				t.Skip("root writes into read-only directories")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if tc.old != nil {
				if err := os.WriteFile(path, tc.old, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dirMode != 0 {
				if err := os.Chmod(dir, tc.dirMode); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			}
			err := atomicfile.Write(path, tc.data, tc.perm)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Write: err = %v, want error %v", err, tc.wantErr)
			}
			want, wantPerm := tc.data, tc.perm
			if tc.wantErr {
				want, wantPerm = tc.old, 0o600
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if string(got) != string(want) {
				t.Errorf("content = %q, want %q", got, want)
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != wantPerm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), wantPerm)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the file (no temp file left)", len(ents))
			}
		})
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "f.json")
	if err := atomicfile.Write(path, []byte("x"), 0o600); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}
