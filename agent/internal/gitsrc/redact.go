package gitsrc

import (
	"net/url"
	"strings"
)

// Redact returns rawURL with any password or token in its userinfo replaced
// by "REDACTED". scp-like addresses (git@host:path) and local paths have no
// secret and come back unchanged.
func Redact(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Unparseable: drop everything up to the last '@' of the authority.
		scheme, rest, _ := strings.Cut(rawURL, "://")
		if i := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); i >= 0 {
			return scheme + "://REDACTED@" + rest[i+1:]
		}
		return rawURL
	}
	if u.User == nil {
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
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
