package gitsrc

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/gitgate/gitgate/agent/internal/source"
)

// sshNamespace is the namespace git signs commits in (ssh-keygen -Y sign
// -n git); a signature made for another purpose is refused.
const sshNamespace = "git"

// TrustedKeysError is a trusted keys file (--trusted-keys) the agent cannot
// use. The user fixes the file.
type TrustedKeysError struct {
	// File is the file's path; empty when the text did not come from a file.
	File string
	// Line is the 1-based line at fault; 0 when the whole file is.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as "trusted keys FILE:LINE: MSG".
func (e *TrustedKeysError) Error() string {
	where := e.File
	if where == "" {
		where = "(text)"
	}
	if e.Line > 0 {
		return fmt.Sprintf("trusted keys %s: line %d: %s", where, e.Line, e.Msg)
	}
	return fmt.Sprintf("trusted keys %s: %s", where, e.Msg)
}

// ReadTrustedKeys reads a trusted keys file for Options.TrustedKeys: an
// armored PGP public key ring or an SSH allowed_signers file (the format
// git's gpg.ssh.allowedSignersFile uses), told apart by content. A file the
// agent cannot use is a *TrustedKeysError naming the file and line.
func ReadTrustedKeys(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading trusted keys: %w", err)
	}
	if _, err := parseTrust(string(b)); err != nil {
		var te *TrustedKeysError
		if errors.As(err, &te) {
			te.File = path
		}
		return "", err
	}
	return string(b), nil
}

// trust is a parsed Options.TrustedKeys: a PGP key ring or allowed signers,
// never both.
type trust struct {
	pgp     string
	signers []allowedSigner
}

// parseTrust tells the two formats apart: a file with a PGP armor block is
// a key ring, and may not also hold allowed_signers lines.
func parseTrust(text string) (*trust, error) {
	if strings.Contains(text, "PRIVATE KEY-----") {
		return nil, &TrustedKeysError{Msg: "holds a private key; give the signers' public keys only"}
	}
	if !strings.Contains(text, "-----BEGIN PGP ") {
		signers, err := parseAllowedSigners(text)
		if err != nil {
			return nil, err
		}
		if len(signers) == 0 {
			return nil, &TrustedKeysError{Msg: "holds neither an armored PGP public key block nor allowed_signers lines"}
		}
		return &trust{signers: signers}, nil
	}
	// A key ring may carry free text around its armor blocks (a
	// description); an allowed_signers line there means two formats
	// in one file, which is refused rather than half-used.
	inArmor := false
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "-----BEGIN PGP "):
			inArmor = true
		case strings.HasPrefix(line, "-----END PGP "):
			inArmor = false
		case !inArmor && line != "" && line[0] != '#':
			if _, err := parseSignerLine(line); err == nil {
				return nil, &TrustedKeysError{Line: i + 1, Msg: "an allowed_signers line in a file with PGP key blocks: " +
					"use one format per file (a PGP key ring, or an SSH allowed_signers file)"}
			}
		}
	}
	if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(text)); err != nil {
		return nil, &TrustedKeysError{Msg: fmt.Sprintf("reading the armored PGP key ring: %v", err)}
	}
	return &trust{pgp: text}, nil
}

// verify checks c's signature: a PGP one against the key ring, an SSH one
// against the allowed signers. Unsigned wraps source.ErrUnsigned; any other
// failure source.ErrUntrusted.
func (t *trust) verify(c *object.Commit) error {
	sig := strings.TrimSpace(c.PGPSignature)
	if sig == "" {
		return fmt.Errorf("verifying commit %s: %w", short(c.Hash), source.ErrUnsigned)
	}
	isSSH := strings.HasPrefix(sig, "-----BEGIN "+sshsig.PEMType+"-----")
	switch {
	case t.pgp != "" && isSSH:
		return fmt.Errorf("verifying commit %s: %w: it has an SSH signature and the trusted keys are a PGP key ring", short(c.Hash), source.ErrUntrusted)
	case t.pgp != "":
		return verifyPGP(c, t.pgp)
	case !isSSH:
		return fmt.Errorf("verifying commit %s: %w: it has a non-SSH (PGP or X.509) signature and the trusted keys are an allowed_signers file", short(c.Hash), source.ErrUntrusted)
	}
	return t.verifySSH(c, sig)
}

func verifyPGP(c *object.Commit, keyring string) error {
	if _, err := c.Verify(keyring); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("verifying commit %s: %w", short(c.Hash), source.ErrUnsigned)
		}
		return fmt.Errorf("verifying commit %s: %w: %v", short(c.Hash), source.ErrUntrusted, err)
	}
	return nil
}

// verifySSH checks an SSH signature (PROTOCOL.sshsig) the way git with
// gpg.ssh.allowedSignersFile and ssh-keygen -Y verify do, plus one rule:
// the key must be listed for the committer's email (see allowedSigner).
func (t *trust) verifySSH(c *object.Commit, armored string) error {
	untrusted := func(format string, a ...any) error {
		return fmt.Errorf("verifying commit %s: %w: %s", short(c.Hash), source.ErrUntrusted, fmt.Sprintf(format, a...))
	}
	block, rest := pem.Decode([]byte(armored))
	if block == nil || block.Type != sshsig.PEMType {
		return untrusted("malformed SSH signature armor")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return untrusted("more than one signature")
	}
	sig, err := sshsig.ParseSignature(block.Bytes)
	if err != nil {
		return untrusted("malformed SSH signature: %v", err)
	}
	if _, ok := sig.PublicKey.(*ssh.Certificate); ok {
		return untrusted("signed with an SSH certificate, which is not supported: list the signer's key in allowed_signers")
	}
	if sig.Namespace != sshNamespace {
		return untrusted("SSH signature namespace %q, not %q: not a git commit signature", sig.Namespace, sshNamespace)
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return fmt.Errorf("verifying commit %s: encoding the signed payload: %w", short(c.Hash), err)
	}
	r, err := payload.Reader()
	if err != nil {
		return fmt.Errorf("verifying commit %s: reading the signed payload: %w", short(c.Hash), err)
	}
	defer r.Close()
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	if err := sshsig.Verify(r, sig, sig.PublicKey, sig.HashAlgorithm, sshNamespace); err != nil {
		return untrusted("bad SSH signature by key %s: %v", fp, err)
	}
	key := sig.PublicKey.Marshal()
	email, when := c.Committer.Email, c.Committer.When
	var refusals []string
	for _, s := range t.signers {
		if !bytes.Equal(s.key.Marshal(), key) {
			continue
		}
		why := s.refuses(email, when)
		if why == "" {
			return nil
		}
		refusals = append(refusals, why)
	}
	if len(refusals) == 0 {
		return untrusted("key %s is not in allowed_signers", fp)
	}
	return untrusted("key %s is in allowed_signers, but %s", fp, strings.Join(refusals, "; "))
}
