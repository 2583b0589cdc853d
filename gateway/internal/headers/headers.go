package headers

import (
	"iter"
	"net/http"
	"net/textproto"
	"strings"
)

// SameCGIName reports whether CGI, WSGI and PHP read header names a and b
// under one variable (HTTP_X_CONSUMER for "X-Consumer", "X_Consumer" and
// "x_consumer"): equal ignoring case, with "_" and "-" equivalent.
func SameCGIName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := fold(a[i]), fold(b[i])
		if ca != cb {
			return false
		}
	}
	return true
}

// EqualFoldASCII reports whether a and b are equal with ASCII letters
// compared in any case, and every other byte as it is: the comparison of
// header tokens ("close", "keep-alive", a media type), which
// strings.EqualFold would widen to Unicode's folds (the Kelvin sign is a
// "k" to it).
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func fold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// CGIName returns the name under which CGI, WSGI and PHP read the header
// k, in lower case with "-" for "_": SameCGIName(a, b) is
// CGIName(a) == CGIName(b). It allocates only for a k with an upper-case
// letter or an underscore.
func CGIName(k string) string {
	for i := 0; i < len(k); i++ {
		if fold(k[i]) != k[i] {
			return string(AppendCGIName(nil, k))
		}
	}
	return k
}

// AppendCGIName appends CGIName(k) to dst: with a buffer of the caller's,
// looking the name up in a map (m[string(b)]) allocates nothing.
func AppendCGIName(dst []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		dst = append(dst, fold(k[i]))
	}
	return dst
}

// DeleteAll removes from h the header name (canonical) and every other
// spelling of it that SameCGIName equates, so that the value the gateway
// sets next is the only one an upstream can read under that name. Only keys
// with an underscore or outside canonical form can be such spellings, so a
// request without them costs one pass over its keys and no allocation.
func DeleteAll(h http.Header, name string) {
	DeleteAllOf(h, []string{name})
}

// DeleteAllOf is DeleteAll for each of names, in one pass over h's keys
// instead of one per name (DeleteAll is its one-name case).
func DeleteAllOf(h http.Header, names []string) {
	for _, n := range names {
		delete(h, n)
	}
	if len(names) == 0 {
		return
	}
	for k := range h {
		for _, n := range names {
			if len(k) == len(n) && SameCGIName(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// DeleteAliases removes from h every key with an underscore whose CGI name
// is the name of one of names (canonical keys stay: the caller decides
// about those). It is DeleteAll for a list, without touching the canonical
// spelling.
func DeleteAliases(h http.Header, names []string) {
	for k := range h {
		if IsAlias(k, names) {
			delete(h, k)
		}
	}
}

// IsAlias reports whether k has an underscore and the CGI name of one of
// names: a key DeleteAliases removes.
func IsAlias(k string, names []string) bool {
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	for _, n := range names {
		if SameCGIName(k, n) {
			return true
		}
	}
	return false
}

// kept are the hop-by-hop headers a Connection header may name without
// removing them here: the reverse proxy handles each itself (it keeps
// "TE: trailers" and the Upgrade of an allowed protocol switch, and drops
// the rest), and "close" and "keep-alive" are connection options, not
// header names.
var kept = map[string]bool{
	"Close": true, "Keep-Alive": true, "Upgrade": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Proxy-Connection": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
}

// ConnectionOptions yields the options of Connection header values vals
// (RFC 9110 section 7.6.1), trimmed, empty ones skipped, as sent: a caller
// canonicalises them to compare them with header names.
func ConnectionOptions(vals []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range vals {
			for opt := range strings.SplitSeq(v, ",") {
				if opt = textproto.TrimString(opt); opt != "" && !yield(opt) {
					return
				}
			}
		}
	}
}

// StripConnectionListed removes from h the headers that its Connection
// header names (RFC 9110 section 7.6.1), except those in kept, and leaves
// Connection naming only the kept ones. Run before the policies, it makes
// the hop-by-hop removal of the reverse proxy find nothing of the gateway's
// own to remove: "Connection: X-Consumer" can no longer drop the consumer
// header an API-key policy sets. A request without Connection options is
// not changed.
func StripConnectionListed(h http.Header) {
	vals := h["Connection"]
	if len(vals) == 0 {
		return
	}
	var keep []string
	var drop map[string]bool // CGIName of every removed name
	for opt := range ConnectionOptions(vals) {
		name := textproto.CanonicalMIMEHeaderKey(opt)
		if kept[name] {
			keep = append(keep, opt)
			continue
		}
		if drop == nil {
			drop = map[string]bool{}
		}
		delete(h, name)
		drop[CGIName(name)] = true
	}
	if drop == nil {
		return
	}
	// The other spellings of every removed name, in one pass over h
	// whatever the number of options: a pass per option made a request
	// naming thousands of options and sending thousands of headers cost
	// seconds of CPU.
	var buf [64]byte
	for k := range h {
		if drop[string(AppendCGIName(buf[:0], k))] {
			delete(h, k)
		}
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}
