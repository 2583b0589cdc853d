package router

import (
	"bytes"
	"strings"
)

// CleanPath returns the decoded URL path p normalized the way Envoy's
// normalize_path and merge_slashes do: runs of slashes become one, "." and
// ".." segments are resolved as RFC 3986 section 5.2.4 says (".." never goes
// above the root), and a trailing slash is kept ("/a/b/.." is "/a/"). ok is
// false for a path that must be refused: one with a backslash or a NUL byte,
// which servers behind the gateway may read as a separator or a terminator.
// A path that is already clean is returned as it is, without allocating. A
// path that does not start with "/" (the "*" of OPTIONS *) is returned
// unchanged.
func CleanPath(p string) (clean string, ok bool) {
	if strings.IndexByte(p, '\\') >= 0 || strings.IndexByte(p, 0) >= 0 {
		return p, false
	}
	if p == "" || p[0] != '/' || isClean(p) {
		return p, true
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] == '/' {
			j++
		}
		if j == len(p) { // only slashes left: one trailing slash
			out = append(out, '/')
			break
		}
		k := j + strings.IndexByte(p[j:], '/')
		if k < j {
			k = len(p)
		}
		switch seg := p[j:k]; seg {
		case ".":
		case "..":
			// On out itself: a string of it would copy the path so far
			// for every "..", quadratic in a long path.
			if n := bytes.LastIndexByte(out, '/'); n >= 0 {
				out = out[:n]
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		if k == len(p) && (p[j:k] == "." || p[j:k] == "..") {
			out = append(out, '/') // "/a/." and "/a/b/.." end in a slash
		}
		i = k
	}
	if len(out) == 0 {
		return "/", true
	}
	return string(out), true
}

// isClean reports whether p (starting with "/") has no empty, "." or ".."
// segment except a final empty one (a trailing slash).
func isClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		switch {
		case rest == "":
			return true // trailing slash
		case rest[0] == '/':
			return false // "//"
		case rest[0] == '.':
			if len(rest) == 1 || rest[1] == '/' {
				return false // "/." segment
			}
			if rest[1] == '.' && (len(rest) == 2 || rest[2] == '/') {
				return false // "/.." segment
			}
		}
	}
	return true
}

// SafeEscapes reports whether raw, the escaped form of a URL path
// (url.URL.RawPath), has only valid percent-escapes, none of which encodes a
// slash, a backslash or a NUL byte. An encoded slash would let "/a%2Fb"
// match as one segment here and be read as two upstream; the gateway refuses
// such paths (Envoy's default for path_with_escaped_slashes is similar).
func SafeEscapes(raw string) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return false
		}
		switch unhex(raw[i+1])<<4 | unhex(raw[i+2]) {
		case '/', '\\', 0:
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
