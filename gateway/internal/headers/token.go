package headers

import "strings"

// IsToken reports whether s is a non-empty RFC 9110 token: a valid field
// name.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// CanonicalToken reports whether k is a non-empty RFC 9110 token, and
// whether it is in the form textproto.CanonicalMIMEHeaderKey gives it (an
// upper-case letter first and after each hyphen, lower-case elsewhere):
// most names that clients and servers send are, and a parser keeps those
// as they are, without a copy or a lookup.
func CanonicalToken(k string) (token, canonical bool) {
	if k == "" {
		return false, false
	}
	canonical = true
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !tokenByte[c] {
			return false, false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	return true, canonical
}

// tokenByte holds the bytes of an RFC 9110 token: a table, because every
// header name of every request and response goes through it.
var tokenByte = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()
