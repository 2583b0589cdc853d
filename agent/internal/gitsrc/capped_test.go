package gitsrc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	// 256 KiB that do not compress: the pack is larger than that.
	noise := make([]byte, 128<<10)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	work := newRepo(t)
	run(t, work, "pull", "-q", bare, "main")
	head := commitFiles(t, work, "big", map[string]string{"blob.txt": hex.EncodeToString(noise)})
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSource(t, tc.url, func(o *Options) { o.MaxFetchBytes = tc.max })
			got, _, err := s.Update(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update = %s, %v; want %v", got, err, tc.wantErr)
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
