package gitsrc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireSSHDEnv makes TestSSHKnownHosts fail instead of skipping when
// sshd is missing; the e2e battery sets it after installing openssh-server.
const requireSSHDEnv = "GITGATE_REQUIRE_SSHD"

// sshd is a real OpenSSH server on loopback, run in the foreground with its
// own config and host keys in a temporary directory.
type sshd struct {
	addr    string // 127.0.0.1:port
	dir     string
	key     string // the client's private key, authorized for the current user
	user    string
	hostKey map[string]string // key type -> host public key line
}

// startSSHD starts sshd with an ed25519 and an RSA host key, or skips the
// test when it is not installed (unless requireSSHDEnv is set).
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(requireSSHDEnv) != "" {
			t.Fatalf("sshd is required (%s is set) but not installed", requireSSHDEnv)
		}
		t.Skip("sshd not installed (Debian: apt-get install openssh-server)")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root insists on its privilege separation
		// directory, which the package's service would create.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Skipf("sshd as root needs /run/sshd: %v", err)
		}
	}
	dir := t.TempDir()
	s := &sshd{dir: dir, user: u.Username, key: filepath.Join(dir, "client_ed25519"), hostKey: map[string]string{}}
	keygen := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ssh-keygen", append([]string{"-q", "-N", ""}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	keygen("-t", "ed25519", "-f", filepath.Join(dir, "host_ed25519"))
	keygen("-t", "rsa", "-b", "2048", "-f", filepath.Join(dir, "host_rsa"))
	keygen("-t", "ed25519", "-f", s.key)
	pub, err := os.ReadFile(s.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	for typ, f := range map[string]string{"ssh-ed25519": "host_ed25519.pub", "ssh-rsa": "host_rsa.pub"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		s.hostKey[typ] = strings.Join(strings.Fields(string(b))[:2], " ")
	}
	// Pick a free port; sshd binds it a moment later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(s.addr)
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %[1]s/host_ed25519
HostKey %[1]s/host_rsa
AuthorizedKeysFile %[1]s/authorized_keys
PidFile %[1]s/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowUsers %[2]s
LogLevel VERBOSE
`, dir, s.user)
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg, "-p", port)
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("sshd log:\n%s", b)
		}
	})
	// Wait for the banner; bounded so a broken sshd fails the test.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return s
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("sshd did not answer on %s: %v\n%s", s.addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// knownHosts writes a known_hosts file with one line per key for the
// server's address as ssh-keyscan prints it ("[127.0.0.1]:port").
func (s *sshd) knownHosts(t *testing.T, host string, keys ...string) string {
	t.Helper()
	if host == "" {
		h, port, _ := net.SplitHostPort(s.addr)
		host = fmt.Sprintf("[%s]:%s", h, port)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", host, k)
	}
	f, err := os.CreateTemp(t.TempDir(), "known_hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// TestSSHKnownHosts clones over SSH from a real sshd with known_hosts files
// holding one key type, both, another key and another host only.
func TestSSHKnownHosts(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	work := newRepo(t)
	sha := commitFiles(t, work, "one", map[string]string{"cfg/a.yaml": "a: 1\n"})
	url := fmt.Sprintf("ssh://%s@%s%s", srv.user, srv.addr, work)
	// A key sshd does not have: the mismatch case.
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	otherPub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	otherKey := strings.Join(strings.Fields(string(otherPub))[:2], " ")

	tests := []struct {
		name    string
		host    string // known_hosts host field; "": the server's
		keys    []string
		wantErr string
	}{
		{name: "ed25519 only", keys: []string{srv.hostKey["ssh-ed25519"]}},
		{name: "rsa only", keys: []string{srv.hostKey["ssh-rsa"]}},
		{name: "both key types", keys: []string{srv.hostKey["ssh-rsa"], srv.hostKey["ssh-ed25519"]}},
		{name: "mismatch", keys: []string{otherKey}, wantErr: "key mismatch"},
		{name: "unknown host", host: "git.example.com", keys: []string{srv.hostKey["ssh-ed25519"]}, wantErr: "key is unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			known := srv.knownHosts(t, tc.host, tc.keys...)
			s := openSource(t, url, func(o *Options) {
				o.SSHKeyFile = srv.key
				o.KnownHostsFile = known
			})
			head, fetched, err := s.Update(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Update: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || head.String() != sha || !fetched {
				t.Fatalf("Update: %s fetched %v, %v; want %s fetched", head, fetched, err, sha)
			}
		})
	}
}
