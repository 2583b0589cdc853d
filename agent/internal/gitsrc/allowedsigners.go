package gitsrc

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// allowedSigner is one line of an allowed_signers file (ssh-keygen(1),
// ALLOWED SIGNERS): principals [options] keytype base64-key [comment].
//
// Unlike git, which only reports the principal, the agent requires the
// committer's email to match the principals: the agent's history, statuses
// and notifications name the committer, and without the match one trusted
// key could sign commits in anyone's name. ssh-keygen -Y verify -I enforces
// the same match; wildcards ("*@example.com") list a key for many.
type allowedSigner struct {
	// principals is an ssh pattern-list matched against the committer's
	// email.
	principals string
	key        ssh.PublicKey
	// namespaces is the namespaces= pattern-list; "" when absent (any).
	namespaces string
	// validAfter and validBefore bound the commit's committer time (as git
	// passes -Overify-time); zero when absent.
	validAfter, validBefore time.Time
}

// refuses says why s does not vouch for a commit by email at when, or ""
// when it does.
func (s allowedSigner) refuses(email string, when time.Time) string {
	switch {
	case s.namespaces != "" && !matchPatternList(sshNamespace, s.namespaces):
		return fmt.Sprintf("only for namespaces %q, not %q", s.namespaces, sshNamespace)
	case !matchPatternList(email, s.principals):
		return fmt.Sprintf("listed for %q, not the committer %s", s.principals, email)
	case !s.validAfter.IsZero() && when.Before(s.validAfter):
		return fmt.Sprintf("the commit time %s is before its valid-after %s", when.UTC().Format(time.RFC3339), s.validAfter.UTC().Format(time.RFC3339))
	case !s.validBefore.IsZero() && when.After(s.validBefore):
		return fmt.Sprintf("the commit time %s is after its valid-before %s", when.UTC().Format(time.RFC3339), s.validBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

// parseAllowedSigners parses an allowed_signers file. Empty lines and lines
// starting with '#' are skipped. An error is a *TrustedKeysError with the
// line.
func parseAllowedSigners(text string) ([]allowedSigner, error) {
	var out []allowedSigner
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSignerLine(line)
		if err != nil {
			return nil, &TrustedKeysError{Line: i + 1, Msg: err.Error()}
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSignerLine(line string) (allowedSigner, error) {
	var s allowedSigner
	var rest string
	if line[0] == '"' {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return s, errors.New("unterminated quoted principals")
		}
		s.principals, rest = line[1:1+end], line[2+end:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return s, errors.New("no space after the quoted principals")
		}
	} else {
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return s, errors.New("principals without a key; want: principals [options] keytype base64-key")
		}
		s.principals, rest = line[:i], line[i:]
	}
	if s.principals == "" {
		return s, errors.New("empty principals")
	}
	rest = strings.TrimSpace(rest)
	pub, _, opts, more, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil || len(strings.TrimSpace(string(more))) != 0 {
		if _, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(line)); err2 == nil {
			return s, errors.New("a public key without principals; an allowed_signers line starts with the signer's email, as in " +
				"`ada@example.com ssh-ed25519 AAAA…`")
		}
		if err == nil {
			err = errors.New("more than one key")
		}
		return s, fmt.Errorf("reading the key: %w", err)
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return s, errors.New("a certificate; list the signer's plain public key")
	}
	s.key = pub
	seen := map[string]bool{}
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		name = strings.ToLower(name)
		if seen[name] {
			return s, fmt.Errorf("%s given twice", name)
		}
		seen[name] = true
		if name == "cert-authority" {
			return s, errors.New("cert-authority (SSH certificates) is not supported: list each signer's public key")
		}
		if name != "namespaces" && name != "valid-after" && name != "valid-before" {
			return s, fmt.Errorf("unknown option %q (allowed: namespaces, valid-after, valid-before)", o)
		}
		if !hasValue {
			return s, fmt.Errorf("%s needs a value", name)
		}
		value, err := unquoteOption(value)
		if err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
		switch name {
		case "namespaces":
			if value == "" {
				return s, errors.New("namespaces is empty")
			}
			s.namespaces = value
		case "valid-after":
			if s.validAfter, err = parseSSHTime(value); err != nil {
				return s, fmt.Errorf("valid-after: %w", err)
			}
		case "valid-before":
			if s.validBefore, err = parseSSHTime(value); err != nil {
				return s, fmt.Errorf("valid-before: %w", err)
			}
		}
	}
	return s, nil
}

// unquoteOption strips the double quotes around an option value.
func unquoteOption(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		if strings.Contains(v, `"`) {
			return "", fmt.Errorf("stray quote in %q", v)
		}
		return v, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) || strings.Contains(v[1:len(v)-1], `"`) {
		return "", fmt.Errorf("badly quoted value %s", v)
	}
	return v[1 : len(v)-1], nil
}

// parseSSHTime parses ssh-keygen's YYYYMMDD[Z] and YYYYMMDDHHMM[SS][Z]
// timestamps: local time, or UTC with the Z suffix.
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	digits := v
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, digits = time.UTC, v[:len(v)-1]
	}
	var layout string
	switch len(digits) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("timestamp %q: want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", v)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return time.Time{}, fmt.Errorf("timestamp %q: want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", v)
		}
	}
	t, err := time.ParseInLocation(layout, digits, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", v, err)
	}
	return t, nil
}

// matchPatternList reports whether s matches the comma-separated ssh
// pattern-list (ssh_config(5), PATTERNS): '*' and '?' wildcards, and a
// pattern starting with '!' that matches refuses s outright. Matching is
// case-sensitive, as for ssh-keygen's principals.
func matchPatternList(s, list string) bool {
	matched := false
	for _, p := range strings.Split(list, ",") {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if negated {
				return false
			}
			matched = true
		}
	}
	return matched
}

// matchPattern matches s against one pattern with '*' (any run) and '?'
// (any one byte), in linear time with backtracking to the last star only.
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
