package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// answer checks what a route answers with: exactly one of backends,
// redirect and directResponse, the fields that only mean something with
// backends, and the redirect, direct response and compression settings.
func answer(r schemas.Route) []Violation {
	var out []Violation
	if n := count(len(r.Backends) > 0, r.Redirect != nil, r.DirectResponse != nil); n != 1 {
		out = append(out, violation(".backends", "a route needs exactly one of backends, redirect or directResponse (%d set)", n))
	}
	if len(r.Backends) == 0 && (r.Redirect != nil || r.DirectResponse != nil) {
		// Forwarding settings would be silently ignored.
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"split", r.Split != nil}, {"rewrite", r.Rewrite != nil}, {"retries", r.Retries != nil},
			{"requestHeaders", r.RequestHeaders != nil}, {"perTryTimeout", r.PerTryTimeout != 0},
			// A local answer costs nothing to make, and a stored redirect
			// would carry the first request's query to the others.
			{"cache", r.Cache != nil},
		} {
			if f.set {
				out = append(out, violation("."+f.name, "%s needs backends: a route with redirect or directResponse forwards nothing", f.name))
			}
		}
	}
	if rd := r.Redirect; rd != nil {
		out = append(out, redirect(rd, r.Match)...)
	}
	if d := r.DirectResponse; d != nil {
		out = append(out, directResponse(d)...)
	}
	if c := r.Compress; c != nil {
		out = append(out, compress(c)...)
	}
	return out
}

func redirect(rd *schemas.Redirect, m schemas.Match) []Violation {
	var out []Violation
	pathType := cmp(m.PathType, schemas.PathPrefix)
	if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
		out = append(out, violation(".redirect.scheme", "scheme %q is not http or https", rd.Scheme))
	}
	if rd.Host != "" && !HostName(rd.Host) {
		out = append(out, violation(".redirect.host", "host %q is not a host name (letters, digits, - and ., no port: use redirect.port)", rd.Host))
	}
	if rd.Port < 0 || rd.Port > 65535 {
		out = append(out, violation(".redirect.port", "port %d is outside 1..65535", rd.Port))
	}
	if rd.Path != "" && rd.Prefix != "" {
		out = append(out, violation(".redirect", "set at most one of path and prefix"))
	}
	for _, p := range []struct{ field, v string }{{"path", rd.Path}, {"prefix", rd.Prefix}} {
		if p.v != "" {
			out = append(out, at(".redirect."+p.field, RedirectPath(p.v))...)
		}
	}
	if strings.ContainsAny(rd.Path, "{}") {
		names, err := RewriteTemplate(rd.Path)
		params, terr := PathTemplate(cmp(m.Path, "/"))
		switch {
		case err != nil:
			out = append(out, at(".redirect.path", err)...)
		case pathType != schemas.PathTemplate || terr != nil:
			out = append(out, violation(".redirect.path", "{param} in redirect.path needs match.pathType: template"))
		default:
			for _, n := range names {
				if !slices.Contains(params, n) {
					out = append(out, violation(".redirect.path", "{%s} is not a parameter of match.path %q", n, m.Path))
				}
			}
		}
	}
	if rd.Prefix != "" && pathType != schemas.PathPrefix {
		out = append(out, violation(".redirect.prefix", "prefix replaces the matched prefix: it needs match.pathType prefix, not %s (use path)", pathType))
	}
	switch rd.Status {
	case 0, 301, 302, 307, 308:
	default:
		out = append(out, violation(".redirect.status", "status %d is not one the gateway redirects with: use 301, 302, 307 or 308", rd.Status))
	}
	return out
}

// RedirectPath reports why p cannot be a configured redirect path: it must
// start with one "/" (never "//", which a browser reads as another host),
// may hold {param} parameters (checked apart, against the match),
// and hold only visible ASCII without a backslash, which browsers also
// read as "/", and without "?" or "#", which would end the path.
func RedirectPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return fail("path %q must start with a single /", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '?' || c == '#' {
			return fail("path %q holds %q: only visible ASCII without \\, ? or # (percent-encode the rest; the request's query is kept unless stripQuery)", p, c)
		}
	}
	return nil
}

// HostName reports whether h is a DNS host name: labels of letters, digits
// and inner hyphens, separated by dots.
func HostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// directHeaders are the response headers a direct response may not set:
// framing and hop-by-hop headers, which the server writes itself, and
// Content-Type, which has its own field.
var directHeaders = []string{
	"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
	"content-length", "content-type",
}

func directResponse(d *schemas.DirectResponse) []Violation {
	var out []Violation
	if d.Status != 0 && (d.Status < 200 || d.Status > 599) {
		out = append(out, violation(".directResponse.status", "status %d is outside 200..599", d.Status))
	}
	if len(d.Body) > schemas.MaxDirectResponseBody {
		out = append(out, violation(".directResponse.body", "body is %d bytes; at most %d", len(d.Body), schemas.MaxDirectResponseBody))
	}
	if d.Body != "" && (d.Status == 204 || d.Status == 304) {
		out = append(out, violation(".directResponse.body", "a %d response has no body", d.Status))
	}
	if strings.ContainsAny(d.ContentType, "\r\n\x00") {
		out = append(out, violation(".directResponse.contentType", "contentType must not contain CR, LF or NUL"))
	}
	for _, name := range sortedKeys(d.Headers) {
		field := ".directResponse.headers." + name
		switch {
		case !Token(name):
			out = append(out, violation(field, "%q is not a valid header name", name))
		case strings.EqualFold(name, "Content-Type"):
			out = append(out, violation(field, "set the Content-Type with directResponse.contentType"))
		case slices.Contains(directHeaders, strings.ToLower(name)):
			out = append(out, violation(field, "%s is set by the gateway itself", name))
		case strings.ContainsAny(d.Headers[name], "\r\n\x00"):
			out = append(out, violation(field, "value of %s must not contain CR, LF or NUL", name))
		}
	}
	return out
}

func compress(c *schemas.Compress) []Violation {
	var out []Violation
	for i, a := range c.Algorithms {
		field := fmt.Sprintf(".compress.algorithms[%d]", i)
		if a != schemas.CompressZstd && a != schemas.CompressGzip {
			out = append(out, violation(field, "unknown algorithm %q: use zstd or gzip", a))
		} else if slices.Contains(c.Algorithms[:i], a) {
			out = append(out, violation(field, "%s is listed twice", a))
		}
	}
	if c.MinBytes < 0 {
		out = append(out, violation(".compress.minBytes", "minBytes %d is negative", c.MinBytes))
	}
	for i, t := range c.ContentTypes {
		if !mediaRange(t) {
			out = append(out, violation(fmt.Sprintf(".compress.contentTypes[%d]", i), "%q is not a media type such as text/html or text/* (no parameters)", t))
		}
	}
	switch c.Level {
	case "", schemas.CompressFastest, schemas.CompressDefault, schemas.CompressBest:
	default:
		out = append(out, violation(".compress.level", "unknown level %q: use fastest, default or best", c.Level))
	}
	return out
}

// mediaRange reports whether t is "type/subtype" or "type/*", tokens
// without parameters.
func mediaRange(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	return ok && Token(typ) && typ != "*" && (sub == "*" || Token(sub))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
