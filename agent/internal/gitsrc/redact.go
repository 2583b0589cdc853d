package gitsrc

import (
	"net/url"
	"strings"
)

// Redact returns rawURL with the secret part of its userinfo replaced by
// "REDACTED": the password of user:password, or a lone user name other than
// "git" (a token may be sent as the user name). Anything after "://" and
// before the last '@' of the authority that does not parse as userinfo is
// redacted whole. scp-like addresses (git@host:path) and local paths have no
// secret and come back unchanged.
func Redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	authority := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil || strings.ContainsAny(authority[:at], "#?") {
		return scheme + "://REDACTED@" + rest[at+1:]
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	} else if u.User.Username() != "git" {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// redactor scrubs known secrets out of error text.
type redactor struct {
	rawURL  string
	secrets []string
}

func (r redactor) scrub(s string) string {
	if r.rawURL != "" {
		s = strings.ReplaceAll(s, r.rawURL, Redact(r.rawURL))
	}
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return s
}

// wrap returns err with its message scrubbed, still unwrapping to err.
func (r redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.scrub(err.Error()), err: err}
}

// redactedError carries a scrubbed message and the original error for
// errors.Is/As. Its Error never contains a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
