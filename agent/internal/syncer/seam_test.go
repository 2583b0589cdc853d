package syncer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// dirSource is a config source that is not Git: a directory holding one
// subdirectory per revision (named by an increasing number, as an etcd
// revision or a Consul index is) and a file HEAD naming the current one. It
// proves the seam: the syncer and the bundle store run it unchanged.
type dirSource struct{ root string }

func (d dirSource) Location() string { return "dir://" + d.root }
func (d dirSource) Tracking() string { return "HEAD" }
func (d dirSource) Ref() string      { return "HEAD" }

func (d dirSource) Update(context.Context) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(d.root, "HEAD"))
	if err != nil {
		return "", false, fmt.Errorf("reading HEAD: %w", err)
	}
	return strings.TrimSpace(string(b)), false, nil
}

func (d dirSource) revDir(rev string) (string, error) {
	if err := schemas.CheckVersion(rev); err != nil {
		return "", fmt.Errorf("revision %q: %w", rev, source.ErrUnknownRevision)
	}
	p := filepath.Join(d.root, rev)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("revision %q: %w", rev, source.ErrUnknownRevision)
	}
	return p, nil
}

func (d dirSource) Info(_ context.Context, rev string) (source.Info, error) {
	p, err := d.revDir(rev)
	if err != nil {
		return source.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return source.Info{}, err
	}
	return source.Info{Revision: rev, Time: fi.ModTime().UTC(), Subject: "revision " + rev}, nil
}

func (d dirSource) Files(_ context.Context, rev, dir string, lim load.Limits) ([]load.File, error) {
	p, err := d.revDir(rev)
	if err != nil {
		return nil, err
	}
	files, diags, err := load.ReadDir(filepath.Join(p, dir), lim)
	if err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		return nil, &schemas.InvalidError{Diagnostics: diags}
	}
	return files, nil
}

func (d dirSource) Resolve(_ context.Context, name string) (string, error) {
	if _, err := d.revDir(name); err != nil {
		return "", err
	}
	return name, nil
}

func (d dirSource) Verify(context.Context, string) error { return nil }

// TestNonGitSource: revisions that are not commit SHAs are applied, stored,
// and rolled back to by name.
func TestNonGitSource(t *testing.T) {
	t.Parallel()
	root, state := t.TempDir(), t.TempDir()
	write := func(rev, port string) {
		t.Helper()
		dir := filepath.Join(root, rev, "cfg")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := "upstreams:\n  web:\n    targets: [\"http://127.0.0.1:" + port + "\"]\nroutes:\n  site:\n    match:\n      path: /\n    backends:\n      - upstream: web\n        weight: 100\n"
		if err := os.WriteFile(filepath.Join(dir, "gw.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "HEAD"), []byte(rev+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gw := admintest.New(t)
	gc := client.New(gw.Sock)
	defer gc.Close()
	st, err := bundle.Open(state, bundle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := New(Options{Source: dirSource{root}, Store: st, Gateway: gc, Path: "cfg", PollInterval: time.Hour, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	syncNow := func() Status {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		s, err := l.SyncAndWait(wctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"first revision applied", func() error { write("7", "9001"); return nil }, "7"},
		{"next revision applied", func() error { write("8", "9002"); return nil }, "8"},
		{"rollback by name", func() error { _, err := l.Rollback(ctx, "7", false, "test"); return err }, "7"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		status := syncNow()
		if gw.Version() != s.want || status.LastApplied != s.want {
			t.Fatalf("%s: gateway runs %q, last applied %q (error %q); want %q", s.name, gw.Version(), status.LastApplied, status.LastError, s.want)
		}
		if _, err := st.Bundle(s.want); err != nil {
			t.Fatalf("%s: stored bundle: %v", s.name, err)
		}
	}
	if _, err := l.Rollback(ctx, "9", false, ""); !errors.Is(err, source.ErrUnknownRevision) {
		t.Fatalf("rollback to an unknown revision: %v, want ErrUnknownRevision", err)
	}
}
