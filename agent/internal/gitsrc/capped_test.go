package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaxFetchBytes serves a real repository (git's smart HTTP backend)
// and a server that streams its refs listing without end: a response past
// the cap fails the head check or the fetch with ErrFetchTooLarge, soon
// and without reading on, and a repository under the cap syncs.
func TestMaxFetchBytes(t *testing.T) {
	t.Parallel()
	root, bare, _, _ := marksRemote(t, false)
	// A pack of a little over 128 KiB: over the smallest cap below.
	noise := incompressible(t, 128<<10)
	work := newRepo(t)
	run(t, work, "pull", "-q", bare, "main")
	head := commitFiles(t, work, "big", map[string]string{"blob.txt": noise})
	run(t, work, "push", "-q", bare, "main")
	repoURL := httpBackend(t, root)

	sent := make(chan int64, 1)
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		first := strings.Repeat("ab", 20) + " HEAD\x00multi_ack\n"
		_, _ = w.Write([]byte("001e# service=git-upload-pack\n0000" + fmt.Sprintf("%04x", len(first)+4) + first))
		ref := strings.Repeat("ab", 20) + " refs/tags/gitgate/main/x\n"
		line := fmt.Sprintf("%04x", len(ref)+4) + ref
		var n int64
		defer func() { sent <- n }()
		for n < 256<<20 {
			m, err := w.Write([]byte(line))
			n += int64(m)
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)

	cases := []struct {
		name    string
		url     string
		max     int64
		wantErr error
	}{
		{"a pack over the cap", repoURL, 128 << 10, ErrFetchTooLarge},
		{"the same repository under the cap", repoURL, 8 << 20, nil},
		{"no cap", repoURL, -1, nil},
		{"an endless refs listing", endless.URL + "/config.git", 1 << 20, ErrFetchTooLarge},
		// git-upload-pack run for a local path: no HTTP body to cut, the
		// pack itself is capped as it is written.
		{"a pack over the cap from a local path", bare, 128 << 10, ErrFetchTooLarge},
		{"the same local path under the cap", bare, 8 << 20, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSource(t, tc.url, func(o *Options) { o.MaxFetchBytes = tc.max })
			got, _, err := s.Update(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update = %s, %v; want %v", got, err, tc.wantErr)
			}
			if tc.wantErr != nil && tc.url != endless.URL+"/config.git" {
				// Refused again on every poll, and nothing left behind:
				// go-git keeps the temp file of a pack it abandons.
				for range 3 {
					if _, _, err := s.Update(context.Background()); !errors.Is(err, tc.wantErr) {
						t.Fatalf("Update again: %v; want %v", err, tc.wantErr)
					}
				}
				if left := tempFiles(t, s.StorageDir()); len(left) > 0 {
					t.Fatalf("refused fetches left temp files: %v", left)
				}
			}
			if tc.wantErr == nil && got != head {
				t.Fatalf("Update = %s, want %s", got, head)
			}
			if tc.url == endless.URL+"/config.git" {
				endless.CloseClientConnections()
				if n := <-sent; n > 64<<20 {
					t.Fatalf("the endless listing was read on: %d bytes sent, cap 1 MiB", n)
				}
			}
		})
	}
}

// tempFiles lists the temp files of unfinished writes in the storage dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	for _, pattern := range []string{"objects/pack/tmp_*", "._packed-refs*", ".*.tmp-*"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, m...)
	}
	return left
}

// TestMaxFetchBytesSSH caps a pack fetched over SSH from a real sshd, which
// the HTTP transports' cap does not see, and leaves no temp file behind.
func TestMaxFetchBytesSSH(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	work := newRepo(t)
	noise := incompressible(t, 128<<10)
	head := commitFiles(t, work, "big", map[string]string{"blob.txt": noise})
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := srv.KnownHosts(known, "", srv.HostKeys["ssh-ed25519"]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		max     int64
		wantErr error
	}{
		{"a pack over the cap", 128 << 10, ErrFetchTooLarge},
		{"under the cap", 8 << 20, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openSource(t, srv.URL(work), func(o *Options) {
				o.SSHKeyFile, o.KnownHostsFile, o.MaxFetchBytes = srv.Key, known, tc.max
			})
			got, _, err := s.Update(context.Background())
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && got != head {
				t.Fatalf("Update = %s, %v; want %s, %v", got, err, head, tc.wantErr)
			}
			if left := tempFiles(t, s.StorageDir()); len(left) > 0 {
				t.Fatalf("the fetch left temp files: %v", left)
			}
		})
	}
}
