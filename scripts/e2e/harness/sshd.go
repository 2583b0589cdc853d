package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"
)

// SSHDBinary is where Debian's openssh-server installs sshd.
const SSHDBinary = "/usr/sbin/sshd"

// ErrNoSSHD is returned by StartSSHD when sshd is not installed.
var ErrNoSSHD = errors.New("sshd is not installed (Debian: apt-get install openssh-server)")

// SSHD is a real OpenSSH server on loopback, run in the foreground
// (`sshd -D -f <own config> -p <port>`) with its own ed25519 and RSA host
// keys in a directory of its own. One client key is authorized for the
// current user, whose git-upload-pack serves repositories by absolute path:
// ssh://<User>@<Addr>/<path>.
type SSHD struct {
	// Addr is 127.0.0.1:<port>.
	Addr string
	// User is the current user, the one the client key logs in as.
	User string
	// Key is the client's private key file (ed25519, no passphrase).
	Key string
	// HostKeys holds the server's public host keys ("<type> <base64>") by
	// type: "ssh-ed25519" and "ssh-rsa".
	HostKeys map[string]string
	// Log is sshd's log file.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
}

// StartSSHD starts sshd with its files in dir and waits for its banner. It
// returns ErrNoSSHD when sshd is not installed. Stop it with Stop.
func StartSSHD(dir string) (*SSHD, error) {
	bin := SSHDBinary
	if p, err := exec.LookPath("sshd"); err == nil {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, ErrNoSSHD
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("finding the current user: %w", err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root insists on its privilege separation
		// directory, which the package's service would create.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("sshd as root needs /run/sshd: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &SSHD{User: u.Username, Key: filepath.Join(dir, "client_ed25519"), HostKeys: map[string]string{},
		Log: filepath.Join(dir, "sshd.log"), done: make(chan struct{})}
	for _, k := range [][]string{
		{"-t", "ed25519", "-f", filepath.Join(dir, "host_ed25519")},
		{"-t", "rsa", "-b", "2048", "-f", filepath.Join(dir, "host_rsa")},
		{"-t", "ed25519", "-f", s.Key},
	} {
		if out, err := exec.Command("ssh-keygen", append([]string{"-q", "-N", ""}, k...)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen %v: %w\n%s", k, err, out)
		}
	}
	pub, err := os.ReadFile(s.Key + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	for typ, f := range map[string]string{"ssh-ed25519": "host_ed25519.pub", "ssh-rsa": "host_rsa.pub"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		if s.HostKeys[typ], err = PublicKeyField(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	if s.Addr, err = FreeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(s.Addr)
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
`, dir, s.User)
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "-D", "-e", "-f", cfg, "-p", port)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting sshd: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if banner(s.Addr) {
			return s, nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.Log)
			return nil, fmt.Errorf("sshd exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			b, _ := os.ReadFile(s.Log)
			return nil, fmt.Errorf("sshd did not answer on %s within 10s:\n%s", s.Addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// banner reports whether an SSH server greets on addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Stop kills sshd and waits for it.
func (s *SSHD) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// URL is the ssh:// URL of the repository at the absolute path dir.
func (s *SSHD) URL(dir string) string { return fmt.Sprintf("ssh://%s@%s%s", s.User, s.Addr, dir) }

// KnownHosts writes a known_hosts file at path with one line per key for
// host, or for the server as ssh-keyscan names it ("[127.0.0.1]:port")
// when host is empty.
func (s *SSHD) KnownHosts(path, host string, keys ...string) error {
	if host == "" {
		h, port, _ := net.SplitHostPort(s.Addr)
		host = fmt.Sprintf("[%s]:%s", h, port)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", host, k)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// PublicKeyField returns "<type> <base64>" of an OpenSSH public key line.
func PublicKeyField(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", fmt.Errorf("not an OpenSSH public key: %q", line)
	}
	return f[0] + " " + f[1], nil
}
