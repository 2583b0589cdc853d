package lkg

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

func testBundle(t testing.TB, version, target string) *schemas.Bundle {
	t.Helper()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{target}}},
		Routes: map[string]schemas.Route{"all": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle(version, schemas.Source{Commit: version}, cfg, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load on empty dir: got %v, want ErrNotFound", err)
	}
	for _, v := range []string{"v1", "v2"} {
		want := testBundle(t, v, "http://127.0.0.1:1")
		if err := s.Save(want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want.Version || got.Digest != want.Digest {
			t.Fatalf("loaded %s/%s, want %s/%s", got.Version, got.Digest, want.Version, want.Digest)
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("bundle file mode %o, want 600", mode)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only %s (no temp files left)", names, FileName)
	}
}

func TestLoadIgnoresInterruptedWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(testBundle(t, "good", "http://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	// A crash between write and rename leaves a temp file beside the good one.
	if err := os.WriteFile(filepath.Join(dir, "."+FileName+".tmp-123"), []byte(`{"apiVer`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "good" {
		t.Fatalf("loaded %q, want good", got.Version)
	}
}

func TestLoadCorrupt(t *testing.T) {
	t.Parallel()
	good := testBundle(t, "v1", "http://127.0.0.1:1")
	goodJSON, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	tampered := *good
	tampered.Config.Routes = map[string]schemas.Route{}
	tamperedJSON, _ := json.Marshal(&tampered)
	otherAPI := *good
	otherAPI.APIVersion = "gitgate.dev/v0"
	otherAPIJSON, _ := json.Marshal(&otherAPI)

	tests := []struct {
		name    string
		content []byte
		wantErr error
	}{
		{name: "empty file", content: nil},
		{name: "truncated", content: goodJSON[:len(goodJSON)/2]},
		{name: "not json", content: []byte("\x00\x01garbage")},
		{name: "digest mismatch", content: tamperedJSON, wantErr: schemas.ErrDigest},
		{name: "unknown apiVersion", content: otherAPIJSON, wantErr: schemas.ErrAPIVersion},
		{name: "unknown field", content: []byte(strings.Replace(string(goodJSON), `{"apiVersion"`, `{"extra":1,"apiVersion"`, 1))},
		{name: "trailing data", content: append(append([]byte{}, goodJSON...), []byte(`{}`)...)},
		{name: "null", content: []byte("null")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(), tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := s.Load()
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Load: got (%v, %v), want *CorruptError", b, err)
			}
			if ce.Path != s.Path() {
				t.Errorf("CorruptError.Path = %q, want %q", ce.Path, s.Path())
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Load error %v does not wrap %v", err, tt.wantErr)
			}
			aside, err := s.Quarantine(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(filepath.Base(aside), FileName+".corrupt-20260102T030405") {
				t.Errorf("quarantined as %s", aside)
			}
			if got, err := os.ReadFile(aside); err != nil || string(got) != string(tt.content) {
				t.Errorf("quarantined file content changed: %v", err)
			}
			if _, err := s.Load(); !errors.Is(err, ErrNotFound) {
				t.Errorf("Load after Quarantine: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the file should be cannot be read as a bundle.
	if err := os.Mkdir(s.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := s.Load(); !errors.As(err, &ce) {
		t.Fatalf("Load: %v, want *CorruptError", err)
	}
}

func TestSaveFailsInMissingDir(t *testing.T) {
	t.Parallel()
	s := &Store{dir: filepath.Join(t.TempDir(), "gone")}
	if err := s.Save(testBundle(t, "v1", "http://127.0.0.1:1")); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

func FuzzDecode(f *testing.F) {
	good, err := json.Marshal(testBundle(f, "v1", "http://127.0.0.1:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"apiVersion":"gitgate.dev/v1","version":"x","digest":"sha256:","config":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			return
		}
		if err := b.Verify(); err != nil {
			t.Fatalf("Decode accepted a bundle that fails Verify: %v", err)
		}
	})
}
