package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// requireSSHDEnv makes TestSSHKnownHosts fail instead of skipping when
// sshd is missing; the e2e battery sets it after installing openssh-server.
const requireSSHDEnv = "GITGATE_REQUIRE_SSHD"

// startSSHD starts a real sshd on loopback for the test, or skips the test
// when it is not installed (unless requireSSHDEnv is set).
func startSSHD(t *testing.T) *harness.SSHD {
	t.Helper()
	dir := t.TempDir()
	s, err := harness.StartSSHD(dir)
	if errors.Is(err, harness.ErrNoSSHD) && os.Getenv(requireSSHDEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.Log)
			t.Logf("sshd log:\n%s", b)
		}
	})
	return s
}

// TestSSHKnownHosts fetches over SSH from a real sshd (ed25519 and RSA host
// keys) with known_hosts files holding one key type, both, another key,
// and another host only.
func TestSSHKnownHosts(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	work := newRepo(t)
	sha := commitFiles(t, work, "one", map[string]string{"cfg/a.yaml": "a: 1\n"})
	// A key sshd does not have: the mismatch case.
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	otherPub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := harness.PublicKeyField(string(otherPub))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		host    string // known_hosts host field; "": the server's
		keys    []string
		wantErr string
	}{
		{name: "ed25519 only", keys: []string{srv.HostKeys["ssh-ed25519"]}},
		{name: "rsa only", keys: []string{srv.HostKeys["ssh-rsa"]}},
		{name: "both key types", keys: []string{srv.HostKeys["ssh-rsa"], srv.HostKeys["ssh-ed25519"]}},
		{name: "mismatch", keys: []string{otherKey}, wantErr: "key mismatch"},
		{name: "unknown host", host: "git.example.com", keys: []string{srv.HostKeys["ssh-ed25519"]}, wantErr: "key is unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			known := filepath.Join(t.TempDir(), "known_hosts")
			if err := srv.KnownHosts(known, tc.host, tc.keys...); err != nil {
				t.Fatal(err)
			}
			s := openSource(t, srv.URL(work), func(o *Options) {
				o.SSHKeyFile = srv.Key
				o.KnownHostsFile = known
			})
			head, fetched, err := s.Update(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Update: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || head != sha || !fetched {
				t.Fatalf("Update: %s fetched %v, %v; want %s fetched", head, fetched, err, sha)
			}
		})
	}
}

// closedEarly picks out go-git's error for a session the server closed
// first, however it is wrapped, and nothing else.
func TestClosedEarly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "none", err: nil},
		{name: "closing input EOF", err: fmt.Errorf("fetching main: %w", errors.New("closing input: EOF")), want: true},
		{name: "other EOF", err: errors.New("reading pack: EOF")},
		{name: "closing input, another error", err: errors.New("closing input: broken pipe")},
		{name: "auth", err: errors.New("ssh: handshake failed: ssh: unable to authenticate")},
	} {
		if got := closedEarly(tc.err); got != tc.want {
			t.Errorf("%s: closedEarly(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
