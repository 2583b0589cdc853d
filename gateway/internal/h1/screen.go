package h1

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// refusal is a request the adapter refuses before the handler, with
// net/http's answer: status and its plain-text reason.
type refusal struct {
	status int
	reason string
}

// Refusals, as net/http words them.
var (
	refuseHeaderName  = &refusal{http.StatusBadRequest, "invalid header name"}
	refuseHeaderValue = &refusal{http.StatusBadRequest, "invalid header value"}
	refuseObsFold     = &refusal{http.StatusBadRequest, "obsolete line folding is not allowed"}
	refuseBareLF      = &refusal{http.StatusBadRequest, "a header line ends in LF without CR"}
	refuseNoHost      = &refusal{http.StatusBadRequest, "missing required Host header"}
	refuseManyHosts   = &refusal{http.StatusBadRequest, "too many Host headers"}
	refuseBadHost     = &refusal{http.StatusBadRequest, "malformed Host header"}
	refuseLength      = &refusal{http.StatusBadRequest, "invalid Content-Length"}
	refuseManyLengths = &refusal{http.StatusBadRequest, "conflicting Content-Length headers"}
	refuseEncoding    = &refusal{http.StatusNotImplemented, "unsupported transfer encoding"}
	refuseExpect      = &refusal{http.StatusExpectationFailed, "unsupported expectation"}
	refuseMethod      = &refusal{http.StatusBadRequest, "invalid method"}
	refuseVersion     = &refusal{http.StatusBadRequest, "malformed HTTP version"}
	refuseTarget      = &refusal{http.StatusBadRequest, "invalid request target"}
	refuseTrailerKey  = &refusal{http.StatusBadRequest, "bad trailer key"}
)

// commonKeys interns the canonical spelling of common header names, so
// that a request using them allocates no key.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Connection", "Content-Disposition", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Type", "Cookie", "Date", "Expect", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Keep-Alive", "Origin", "Pragma", "Proxy-Authorization", "Proxy-Connection", "Range",
		"Referer", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions",
		"Sec-Websocket-Protocol", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent",
		"Via", "X-Api-Key", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Traceparent", "Tracestate", "Grpc-Timeout", "Http2-Settings",
	} {
		m[k] = k
	}
	return m
}()

// lowerKeys maps the lower-case spelling of each common name to its
// canonical form, for clients that spell it otherwise ("X-API-Key").
var lowerKeys = func() map[string]string {
	m := map[string]string{}
	for k := range commonKeys {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// canonicalKey returns the canonical form of the header name k, a token
// not in canonical form (parseHeaders keeps those that are as they are);
// a common name in any spelling costs no allocation.
func canonicalKey(k string) string {
	if len(k) <= 32 {
		var buf [32]byte
		for i := 0; i < len(k); i++ {
			c := k[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if c, ok := lowerKeys[string(buf[:len(k)])]; ok {
			return c
		}
	}
	c := textproto.CanonicalMIMEHeaderKey(k)
	if c2, ok := commonKeys[c]; ok {
		return c2
	}
	return c
}

// seen records which of the headers that framing and hijacking depend on a
// request carries, as parseHeaders finds them: the checks after it look up
// only those that are there, instead of asking the map for each.
type seen uint8

const (
	seenHost seen = 1 << iota
	seenTransferEncoding
	seenExpect
	seenContentLength
	seenUpgrade
	seenConnection
)

// seenOf returns the seen bit of the canonical name k, 0 for any other.
func seenOf(k string) seen {
	switch k {
	case "Host":
		return seenHost
	case "Transfer-Encoding":
		return seenTransferEncoding
	case "Expect":
		return seenExpect
	case "Content-Length":
		return seenContentLength
	case "Upgrade":
		return seenUpgrade
	case "Connection":
		return seenConnection
	}
	return 0
}

// parseHeaders fills h from raw, the request's header block as read (one
// string, s, of which keys and values are slices), applying net/http's
// rules and the stricter ones RFC 9112 allows: no obs-fold, no bare LF.
// vals backs the one-value slices of h. It returns the refusal, or nil,
// and which of the names seen tracks h holds.
func parseHeaders(s string, h http.Header, vals *[]string) (seen, *refusal) {
	var found seen
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		var line string
		if i < 0 {
			line, s = s, ""
		} else {
			if i == 0 || s[i-1] != '\r' {
				return found, refuseBareLF
			}
			line, s = s[:i-1], s[i+1:]
		}
		if line == "" {
			break // the empty line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return found, refuseObsFold
		}
		k, v, ok := strings.Cut(line, ":")
		token, canonical := headers.CanonicalToken(k)
		if !ok || !token {
			return found, refuseHeaderName
		}
		v = trimOWS(v)
		if !httpguts.ValidHeaderFieldValue(v) {
			return found, refuseHeaderValue
		}
		if !canonical {
			k = canonicalKey(k) // a copy, unless a common name
		}
		found |= seenOf(k)
		if old, ok := h[k]; ok {
			// A name's first value is a one-value slice of vals, capped
			// (below), so the first repeat copies it out; later repeats
			// append to that copy, which grows by doubling. Capping
			// each append (as this once did) copied the whole list on
			// every repeat: quadratic, 155 ms of CPU for one request
			// repeating one name 6,000 times within the 64 KiB limit.
			h[k] = append(old, v)
			continue
		}
		n := len(*vals)
		*vals = append(*vals, v)
		h[k] = (*vals)[n : n+1 : n+1]
	}
	return found, nil
}

// trimOWS trims the optional whitespace around a field value: spaces and
// tabs, nothing else (a CR left in a value is refused after). It is
// strings.Trim(v, " \t") without the set that Trim builds on every call.
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// checkFraming applies net/http's rules to Host, Content-Length and
// Transfer-Encoding; http11 is whether the request is HTTP/1.1, found what
// parseHeaders found in h.
func checkFraming(h http.Header, found seen, http11, absolute bool) *refusal {
	var hosts []string
	haveHost := found&seenHost != 0
	if haveHost {
		hosts = h["Host"]
	}
	switch {
	case len(hosts) > 1:
		return refuseManyHosts
	case !haveHost && http11 && !absolute:
		return refuseNoHost
	case haveHost && !httpguts.ValidHostHeader(hosts[0]):
		return refuseBadHost
	}
	if found&seenTransferEncoding != 0 {
		if te := h["Transfer-Encoding"]; len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return refuseEncoding
		}
	}
	// As net/http: an expectation other than 100-continue (in the first
	// Expect line) is refused, never forwarded.
	if found&seenExpect != 0 {
		if e := h["Expect"]; len(e) > 0 && e[0] != "" && !httpguts.HeaderValuesContainsToken(e[:1], "100-continue") {
			return refuseExpect
		}
	}
	if found&seenContentLength == 0 {
		return nil
	}
	cl := h["Content-Length"]
	for i, v := range cl {
		if !digits(v) {
			return refuseLength
		}
		if i > 0 && v != cl[0] {
			return refuseManyLengths
		}
	}
	return nil
}

func digits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validMethod reports whether m is a token (RFC 9110 section 9.1).
func validMethod(m []byte) bool {
	if len(m) == 0 {
		return false
	}
	for _, c := range m {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validTarget reports whether t holds only visible ASCII (no space, no
// control byte, nothing over 0x7e).
func validTarget(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// declaredTrailers returns the trailer fields a chunked request's Trailer
// header announces, with nil values, as net/http's Request.Trailer holds
// them before the body is read; nil when it announces none. As net/http,
// it refuses an announced Transfer-Encoding, Trailer or Content-Length.
func declaredTrailers(vv []string) (http.Header, *refusal) {
	var tr http.Header
	for k := range trailerNames(vv) {
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			return nil, refuseTrailerKey
		}
		if tr == nil {
			tr = http.Header{}
		}
		tr[k] = nil
	}
	return tr, nil
}
