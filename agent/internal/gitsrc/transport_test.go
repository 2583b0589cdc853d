package gitsrc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestHTTPSTokenAuth serves a real repository with git's smart HTTP
// backend behind a check of the x-access-token basic auth GitHub uses.
func TestHTTPSTokenAuth(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	work := filepath.Join(root, "config.git")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, work, "init", "-q", "-b", "main")
	sha := commitFiles(t, work, "one", map[string]string{"a.yaml": "a: 1\n"})
	const token = "ghs_s3cr3tT0ken"
	cgiH := gitBackend(t, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "x-access-token" || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "auth required", http.StatusUnauthorized)
			return
		}
		cgiH.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/config.git/.git"

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"right token", token, nil},
		{"wrong token", "nope", transport.ErrAuthenticationRequired},
		{"no token", "", transport.ErrAuthenticationRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openSource(t, url, func(o *Options) { o.Token = tc.token })
			head, fetched, err := s.Update(context.Background())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.token != "" && strings.Contains(err.Error(), tc.token) {
					t.Fatalf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil || head != sha || !fetched {
				t.Fatalf("Update = %s %v %v, want %s fetched", head, fetched, err, sha)
			}
		})
	}
}

func TestAuthFor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(knownhosts.Line([]string{"git.example.com"}, sshPub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		opts     Options
		wantType string
		wantUser string
		wantErr  bool
	}{
		{name: "https with token", opts: Options{URL: "https://github.com/o/r.git", Token: "t"}, wantType: "http-basic-auth", wantUser: "x-access-token"},
		{name: "https without token", opts: Options{URL: "https://github.com/o/r.git"}},
		{name: "scp-like ssh with key", opts: Options{URL: "git@git.example.com:o/r.git", SSHKeyFile: keyFile, KnownHostsFile: known}, wantType: "ssh-public-keys", wantUser: "git"},
		{name: "ssh URL user", opts: Options{URL: "ssh://deploy@git.example.com/o/r.git", SSHKeyFile: keyFile, KnownHostsFile: known}, wantType: "ssh-public-keys", wantUser: "deploy"},
		{name: "missing key file", opts: Options{URL: "git@git.example.com:o/r.git", SSHKeyFile: filepath.Join(dir, "absent"), KnownHostsFile: known}, wantErr: true},
		{name: "local path", opts: Options{URL: dir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := authFor(tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatal("authFor succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantType == "" {
				if a != nil {
					t.Fatalf("auth = %v, want none", a)
				}
				return
			}
			if a == nil || a.Name() != tc.wantType {
				t.Fatalf("auth = %v, want %s", a, tc.wantType)
			}
			switch v := a.(type) {
			case *githttp.BasicAuth:
				if v.Username != tc.wantUser {
					t.Fatalf("user %q", v.Username)
				}
			case *gitssh.PublicKeys:
				if v.User != tc.wantUser || v.HostKeyCallback == nil {
					t.Fatalf("user %q, host key callback set %v", v.User, v.HostKeyCallback != nil)
				}
			}
		})
	}
}
