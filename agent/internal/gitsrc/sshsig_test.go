package gitsrc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/agent/internal/source"
)

// sshKey makes a key pair with the real ssh-keygen and returns the private
// key's path and the public key line ("ssh-ed25519 AAAA... comment").
func sshKey(t *testing.T, dir, name, typ string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name, "-f", priv}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(b))
}

// sshSignedCommit commits a change in dir with the git CLI, signed by the
// SSH private key at priv (gpg.format=ssh), and returns the commit's SHA.
func sshSignedCommit(t *testing.T, dir, msg, priv string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("msg: "+msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "add", "a.yaml")
	run(t, dir, "-c", "gpg.format=ssh", "-c", "user.signingkey="+priv, "commit", "-q", "-S", "-m", msg)
	return run(t, dir, "rev-parse", "HEAD")
}

// writeObject writes a raw commit object with git hash-object and returns
// its SHA.
func writeObject(t *testing.T, dir, raw string) string {
	t.Helper()
	cmd := execGit(dir, "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Stdin = strings.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git hash-object: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// withSignature returns the raw commit object payload (no signature) with
// sig as its gpgsig header.
func withSignature(payload, sig string) string {
	head, body, _ := strings.Cut(payload, "\n\n")
	sig = strings.TrimSuffix(sig, "\n")
	return head + "\ngpgsig " + strings.ReplaceAll(sig, "\n", "\n ") + "\n\n" + body
}

// signPayload signs payload with ssh-keygen -Y sign in namespace ns and
// returns the armored signature.
func signPayload(t *testing.T, dir, priv, ns, payload string) string {
	t.Helper()
	f := filepath.Join(dir, "payload")
	if err := os.WriteFile(f, []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", priv, f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f + ".sig")
	return string(b)
}

// stripSignature returns the raw commit object without its gpgsig header.
func stripSignature(raw string) string {
	var out []string
	inSig := false
	for _, l := range strings.SplitAfter(raw, "\n") {
		switch {
		case strings.HasPrefix(l, "gpgsig "):
			inSig = true
			continue
		case inSig && strings.HasPrefix(l, " "):
			continue
		}
		inSig = false
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func TestVerifySSH(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	ada, adaPub := sshKey(t, keys, "ada", "ed25519")
	rsa, rsaPub := sshKey(t, keys, "rsa", "rsa")
	stranger, _ := sshKey(t, keys, "stranger", "ed25519")
	fileOnly, fileOnlyPub := sshKey(t, keys, "fileonly", "ed25519")
	expired, expiredPub := sshKey(t, keys, "expired", "ed25519")
	future, futurePub := sshKey(t, keys, "future", "ed25519")
	bob, bobPub := sshKey(t, keys, "bob", "ed25519")
	wild, wildPub := sshKey(t, keys, "wild", "ed25519")
	negated, negatedPub := sshKey(t, keys, "negated", "ed25519")
	pgpKey := newEntity(t, "pgp")

	signers := strings.Join([]string{
		"# people allowed to change the gateway config",
		"ada@example.com " + adaPub,
		"ada@example.com,ops@example.com namespaces=\"git,file\" " + rsaPub,
		"ada@example.com namespaces=\"file\" " + fileOnlyPub,
		"ada@example.com valid-before=20200101Z " + expiredPub,
		"ada@example.com valid-after=29991231Z " + futurePub,
		"bob@example.com " + bobPub,
		`"*@example.com" ` + wildPub,
		"*@example.com,!ada@example.com " + negatedPub,
		"",
	}, "\n")

	work := newRepo(t)
	unsigned := commitFiles(t, work, "unsigned", map[string]string{"a.yaml": "a: 1\n"})
	byAda := sshSignedCommit(t, work, "by ada", ada)
	byRSA := sshSignedCommit(t, work, "by rsa", rsa)
	byStranger := sshSignedCommit(t, work, "by stranger", stranger)
	byFileOnly := sshSignedCommit(t, work, "by a file-only key", fileOnly)
	byExpired := sshSignedCommit(t, work, "by an expired key", expired)
	byFuture := sshSignedCommit(t, work, "by a not yet valid key", future)
	byBob := sshSignedCommit(t, work, "by bob as ada", bob)
	byWild := sshSignedCommit(t, work, "by a wildcard key", wild)
	byNegated := sshSignedCommit(t, work, "by a key negated for ada", negated)
	byPGP := signedCommit(t, work, "by pgp", pgpKey)

	// A commit whose message was changed after signing keeps ada's
	// signature over the old payload.
	raw := run(t, work, "cat-file", "commit", byAda) + "\n"
	tampered := writeObject(t, work, strings.Replace(raw, "by ada", "by ada, but edited", 1))
	// A signature by ada's key over the right payload in namespace "file".
	payload := stripSignature(raw)
	wrongNamespace := writeObject(t, work, withSignature(payload, signPayload(t, keys, ada, "file", payload)))
	// The same payload with the right signature twice.
	good := signPayload(t, keys, ada, "git", payload)
	twoSigs := writeObject(t, work, withSignature(payload, good+good))
	// A right signature of the payload, written by hand: proves that
	// withSignature builds the objects the other cases depend on.
	rebuilt := writeObject(t, work, withSignature(payload, good))
	// Every object must be reachable for the fetch.
	for i, sha := range []string{tampered, wrongNamespace, twoSigs, rebuilt} {
		run(t, work, "update-ref", "refs/heads/extra"+itoa(i), sha)
	}

	src := openSource(t, work, func(o *Options) { o.TrustedKeys = signers })
	if _, _, err := src.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := src.FetchRef(context.Background(), "refs/heads/extra"+itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		sha     string
		wantErr error
		wantMsg string
	}{
		{"ed25519 key listed for the committer", byAda, nil, ""},
		{"RSA key listed with namespaces git,file", byRSA, nil, ""},
		{"key listed for a wildcard principal", byWild, nil, ""},
		{"signature rebuilt from the payload", rebuilt, nil, ""},
		{"key not in allowed_signers", byStranger, source.ErrUntrusted, "not in allowed_signers"},
		{"key listed only for namespace file", byFileOnly, source.ErrUntrusted, "namespace"},
		{"key past valid-before", byExpired, source.ErrUntrusted, "valid-before"},
		{"key before valid-after", byFuture, source.ErrUntrusted, "valid-after"},
		{"key listed for another principal", byBob, source.ErrUntrusted, "ada@example.com"},
		{"key whose principals negate the committer", byNegated, source.ErrUntrusted, "ada@example.com"},
		{"signature in namespace file", wrongNamespace, source.ErrUntrusted, "namespace"},
		{"commit changed after signing", tampered, source.ErrUntrusted, "bad SSH signature"},
		{"two signatures", twoSigs, source.ErrUntrusted, "more than one"},
		{"unsigned", unsigned, source.ErrUnsigned, ""},
		{"PGP signature against allowed_signers", byPGP, source.ErrUntrusted, "allowed_signers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := src.Verify(context.Background(), tc.sha)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Verify = %v, want it to say %q", err, tc.wantMsg)
			}
		})
	}
}

// TestVerifyPGPRingRefusesSSH checks that a PGP key ring still verifies PGP
// commits and refuses SSH-signed ones with a clear reason.
func TestVerifyPGPRingRefusesSSH(t *testing.T) {
	t.Parallel()
	trusted := newEntity(t, "trusted")
	ada, _ := sshKey(t, t.TempDir(), "ada", "ed25519")
	work := newRepo(t)
	byPGP := signedCommit(t, work, "by pgp", trusted)
	bySSH := sshSignedCommit(t, work, "by ssh", ada)
	src := openSource(t, work, func(o *Options) { o.TrustedKeys = armoredPublic(t, trusted) })
	if _, _, err := src.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := src.Verify(context.Background(), byPGP); err != nil {
		t.Fatalf("PGP-signed commit: %v", err)
	}
	err := src.Verify(context.Background(), bySSH)
	if !errors.Is(err, source.ErrUntrusted) || !strings.Contains(err.Error(), "SSH signature") {
		t.Fatalf("SSH-signed commit against a PGP ring: %v, want untrusted naming the SSH signature", err)
	}
}

func TestTrustedKeysFormats(t *testing.T) {
	t.Parallel()
	_, pub := sshKey(t, t.TempDir(), "ada", "ed25519")
	ring := armoredPublic(t, newEntity(t, "pgp"))
	tests := []struct {
		name    string
		text    string
		wantErr string // "" = accepted
	}{
		{"PGP key ring", ring, ""},
		{"PGP key ring after a description", "Ada's key, exported 2026-01-01\n" + ring, ""},
		{"allowed_signers", "ada@example.com " + pub + "\n", ""},
		{"allowed_signers with CRLF and comments", "# ops\r\n\r\nada@example.com " + pub + "\r\n", ""},
		{"allowed_signers with every option", `ada@example.com NAMESPACES="git",valid-after=20240101,valid-before="203001021504Z" ` + pub, ""},
		{"allowed_signers line before a PGP block", "ada@example.com " + pub + "\n" + ring, "line 1: an allowed_signers line in a file with PGP key blocks"},
		{"allowed_signers line after a PGP block", ring + "\nada@example.com " + pub + "\n", "an allowed_signers line in a file with PGP key blocks"},
		{"empty", "\n# nothing\n", "neither an armored PGP public key block nor allowed_signers lines"},
		{"public key without principals", pub + "\n", "line 1: a public key without principals"},
		{"unknown option", "ada@example.com no-touch-required " + pub, `line 1: unknown option "no-touch-required"`},
		{"cert-authority", "*@example.com cert-authority " + pub, "line 1: cert-authority"},
		{"bad timestamp", "ada@example.com valid-after=2024 " + pub, "line 1: valid-after"},
		{"duplicate option", `ada@example.com namespaces="git",namespaces="file" ` + pub, "line 1: namespaces given twice"},
		{"bad key on line 3", "# a\nada@example.com " + pub + "\nbob@example.com ssh-ed25519 AAAAnotbase64\n", "line 3:"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", "private key"},
		{"broken PGP block", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n", "PGP key ring"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "trusted")
			if err := os.WriteFile(file, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadTrustedKeys(file)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ReadTrustedKeys = %v, want accepted", err)
				}
				return
			}
			var te *TrustedKeysError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), file) {
				t.Fatalf("ReadTrustedKeys = %v, want a *TrustedKeysError naming %s and saying %q", err, file, tc.wantErr)
			}
			// Open refuses the same text before touching the network.
			if _, err := Open(Options{URL: "https://example.invalid/r.git", Branch: "main", StorageDir: t.TempDir(), TrustedKeys: tc.text}); !errors.As(err, &te) {
				t.Fatalf("Open = %v, want a *TrustedKeysError", err)
			}
		})
	}
}

func TestMatchPatternList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s, list string
		want    bool
	}{
		{"ada@example.com", "ada@example.com", true},
		{"ada@example.com", "bob@example.com,ada@example.com", true},
		{"ada@example.com", "*@example.com", true},
		{"ada@example.com", "?da@example.com", true},
		{"ada@example.com", "*@example.org", false},
		{"ada@example.com", "*@example.com,!ada@example.com", false},
		{"ada@example.com", "!ada@example.com", false},
		{"ada@example.com", "!bob@example.com", false},
		{"ada@example.com", "Ada@example.com", false},
		{"git", "git,file", true},
		{"git", "g*", true},
		{"git", "gi", false},
		{"", "*", true},
		{"", "", true},
		{"a", "", false},
	}
	for _, tc := range tests {
		if got := matchPatternList(tc.s, tc.list); got != tc.want {
			t.Errorf("matchPatternList(%q, %q) = %v, want %v", tc.s, tc.list, got, tc.want)
		}
	}
}

func FuzzParseAllowedSigners(f *testing.F) {
	f.Add("ada@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbx7JdBEsGWbjU8Pr2JQWxSr2f2CQeSbCVRbLgJuylN ada\n")
	f.Add(`"*@example.com" namespaces="git",valid-after=20240101Z ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbx7JdBEsGWbjU8Pr2JQWxSr2f2CQeSbCVRbLgJuylN`)
	f.Add("# comment\n\n\"unterminated ssh-ed25519 AAAA\n")
	f.Add("a valid-before=\"2030 ssh-rsa AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		signers, err := parseAllowedSigners(text)
		if err != nil {
			var te *TrustedKeysError
			if !errors.As(err, &te) || te.Line < 1 {
				t.Fatalf("error %v is not a *TrustedKeysError with a line", err)
			}
			return
		}
		for _, s := range signers {
			if s.key == nil || s.principals == "" {
				t.Fatalf("accepted a signer without key or principals: %+v", s)
			}
		}
	})
}
