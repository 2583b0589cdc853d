package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/schemas"
)

// fakeBackend answers from fixed values and records calls.
type fakeBackend struct {
	rollbackErr error
	resumeErr   error
	gotRollback RollbackRequest
}

func (f *fakeBackend) Status(context.Context) syncer.Status {
	return syncer.Status{Mode: "tracking", LastApplied: strings.Repeat("a", 40)}
}

func (f *fakeBackend) History(n int) []bundle.Entry {
	var out []bundle.Entry
	for i := range 5 {
		out = append(out, bundle.Entry{SHA: fmt.Sprintf("%040d", i), Result: bundle.ResultApplied})
	}
	if n > 0 && n < len(out) {
		out = out[:n]
	}
	return out
}

func (f *fakeBackend) SyncAndWait(context.Context, string) (syncer.Status, error) {
	return syncer.Status{Mode: "tracking", Syncs: 7}, nil
}

func (f *fakeBackend) Rollback(_ context.Context, rev string, hold bool, reason string) (syncer.RollbackResult, error) {
	f.gotRollback = RollbackRequest{Rev: rev, Hold: hold, Reason: reason}
	if f.rollbackErr != nil {
		return syncer.RollbackResult{}, f.rollbackErr
	}
	return syncer.RollbackResult{SHA: strings.Repeat("b", 40), Pin: bundle.Pin{SHA: strings.Repeat("b", 40), Hold: hold, Reason: reason}}, nil
}

func (f *fakeBackend) Resume(context.Context) error { return f.resumeErr }

func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "agent.sock")
}

func serve(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	p := sockPath(t)
	s, err := Listen(p, b, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return NewClient(p), p
}

// TestSocketMode: the control socket is 0600 once Listen returns, and no
// group or other bit is set even in the moment between bind and chmod.
func TestSocketMode(t *testing.T) {
	t.Parallel()
	p := sockPath(t)
	var atBind fs.FileMode
	s, err := listen(p, &fakeBackend{}, zerolog.Nop(), func(path string) {
		if fi, err := os.Lstat(path); err == nil {
			atBind = fi.Mode().Perm()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if atBind == 0 || atBind&0o077 != 0 {
		t.Fatalf("socket mode right after bind %o, want no group or other bit", atBind)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestStaleSocketReplacedButFilesKept(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, p string)
		wantErr bool
	}{
		{"stale socket removed", func(t *testing.T, p string) {
			ln, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}, false},
		{"regular file refused", func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := sockPath(t)
			tc.prepare(t, p)
			s, err := Listen(p, &fakeBackend{}, zerolog.Nop())
			if tc.wantErr {
				if err == nil {
					s.Close(context.Background())
					t.Fatal("Listen succeeded over a regular file")
				}
				if b, _ := os.ReadFile(p); string(b) != "keep me" {
					t.Fatal("the regular file was touched")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Close(context.Background())
		})
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fb := &fakeBackend{}
	c, _ := serve(t, fb)
	st, err := c.Status(ctx)
	if err != nil || st.LastApplied != strings.Repeat("a", 40) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	h, err := c.History(ctx, 2)
	if err != nil || len(h) != 2 {
		t.Fatalf("History = %v, %v", h, err)
	}
	st, err = c.Sync(ctx)
	if err != nil || st.Syncs != 7 {
		t.Fatalf("Sync = %+v, %v", st, err)
	}
	res, err := c.Rollback(ctx, RollbackRequest{Rev: "abcd", Hold: true, Reason: "oops"})
	if err != nil || !res.Pin.Hold || fb.gotRollback != (RollbackRequest{Rev: "abcd", Hold: true, Reason: "oops"}) {
		t.Fatalf("Rollback = %+v, %v (backend got %+v)", res, err, fb.gotRollback)
	}
	if _, err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsCarryStatusAndDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantCode  int
		wantDiags int
	}{
		{"unknown revision", fmt.Errorf("resolving: %w", source.ErrUnknownRevision), 404, 0},
		{"ambiguous revision", fmt.Errorf("resolving: %w", source.ErrAmbiguousRevision), 409, 0},
		{"invalid commit", fmt.Errorf("rolling back: %w", &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{File: "a.yaml", Line: 3, Message: "bad"}}}), 422, 1},
		{"no previous", syncer.ErrNoPrevious, 409, 0},
		{"other", errors.New("disk full"), 500, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := serve(t, &fakeBackend{rollbackErr: tc.err})
			_, err := c.Rollback(context.Background(), RollbackRequest{Rev: "abcd"})
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tc.wantCode || len(ae.Diagnostics) != tc.wantDiags {
				t.Fatalf("err = %#v, want code %d with %d diagnostics", err, tc.wantCode, tc.wantDiags)
			}
		})
	}
}

func TestNoAgentRunning(t *testing.T) {
	t.Parallel()
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "agent run") {
		t.Fatalf("err = %v, want a hint that the agent is not running", err)
	}
}
