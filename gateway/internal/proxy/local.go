package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
)

// The upstream label and log value of a route that answers by itself: a
// redirect or a direct response. The parentheses keep them apart from
// upstream names.
const (
	UpstreamRedirect = "(redirect)"
	UpstreamDirect   = "(direct)"
)

// local is a route's own answer, given instead of forwarding.
type local interface {
	serve(w http.ResponseWriter, r *http.Request, resp *headerOps)
}

// redirect answers with a Location built from the request and the config.
// The host comes only from the config or, when the config has none, from
// the request's own Host after a syntax check; the path and query are
// percent-encoded, so nothing from the request can add a header or name
// another host.
type redirect struct {
	scheme     string
	host       string     // without port
	port       string     // "" : see portFor
	path       string     // replaces the whole path
	tmpl       []tmplPart // path with {param}s of a template match; nil: none
	prefix     string     // replaces the matched prefix
	matched    string     // the route's match.path without its trailing "/"
	stripQuery bool
	status     int
}

func newRedirect(rd *schemas.Redirect, match schemas.Match) *redirect {
	x := &redirect{
		scheme: rd.Scheme, host: rd.Host, path: rd.Path, prefix: rd.Prefix,
		stripQuery: rd.StripQuery, status: rd.Status,
		matched: strings.TrimSuffix(match.Path, "/"),
	}
	if rd.Port != 0 {
		x.port = strconv.Itoa(rd.Port)
	}
	if strings.ContainsAny(rd.Path, "{}") {
		x.tmpl = templateParts(rd.Path) // checked by rules.Route
	}
	if x.status == 0 {
		x.status = schemas.DefaultRedirectStatus
	}
	return x
}

var bodyBadHost = reply.New("bad_host", "the request's Host header is not a valid host[:port], so no redirect can be built from it", "")

func (x *redirect) serve(w http.ResponseWriter, r *http.Request, resp *headerOps) {
	ob := observationOf(w)
	loc, ok := x.location(r, ob != nil && ob.client.Trusted)
	if !ok {
		reply.Write(w, http.StatusBadRequest, bodyBadHost)
		return
	}
	h := w.Header()
	h["Location"] = []string{loc}
	h["Content-Length"] = []string{"0"}
	resp.apply(h)
	w.WriteHeader(x.status)
}

// location returns the absolute URL r is redirected to; ok is false when
// the host must come from the request and its Host header is malformed.
func (x *redirect) location(r *http.Request, trusted bool) (string, bool) {
	scheme := x.scheme
	if scheme == "" {
		scheme = requestScheme(r, trusted)
	}
	host, port := x.host, x.port
	if host == "" {
		var reqPort string
		var ok bool
		host, reqPort, ok = splitHost(r.Host)
		if !ok {
			return "", false
		}
		if port == "" && x.scheme == "" {
			port = reqPort // same scheme, same host: the same port
		}
	}
	if port == "80" && scheme == "http" || port == "443" && scheme == "https" {
		port = ""
	}
	var b strings.Builder
	b.Grow(len(scheme) + len(host) + len(r.URL.Path) + len(r.URL.RawQuery) + 16)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(x.newPath(r))
	if !x.stripQuery && r.URL.RawQuery != "" {
		b.WriteByte('?')
		writeQuery(&b, r.URL.RawQuery)
	}
	return b.String(), true
}

// newPath returns the redirect's path, percent-encoded.
func (x *redirect) newPath(r *http.Request) string {
	u := r.URL
	p := u.Path
	switch {
	case x.tmpl != nil:
		params, _ := r.Context().Value(paramsKey{}).(map[string]string)
		var b strings.Builder
		for _, part := range x.tmpl {
			if part.param {
				b.WriteString(url.PathEscape(params[part.s])) // one segment, from the request
			} else {
				b.WriteString(part.s) // checked by rules.RedirectPath: already safe
			}
		}
		return b.String()
	case x.path != "":
		return x.path // checked by rules.RedirectPath: already safe
	case x.prefix != "":
		rest := strings.TrimPrefix(p, x.matched) // the router matched it, segment-aware
		if rest != "" && rest[0] != '/' {
			rest = "" // not under the prefix (cannot happen for a matched request)
		}
		p = strings.TrimSuffix(x.prefix, "/") + rest
		if p == "" {
			p = "/"
		}
	default:
		p = u.EscapedPath()
		if strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "\\") {
			return p
		}
		p = u.Path
	}
	e := (&url.URL{Path: p}).EscapedPath()
	if !strings.HasPrefix(e, "/") {
		e = "/" + e
	}
	return e
}

// writeQuery writes q with every byte that is not visible ASCII, and the
// few a browser or a header parser treats specially, percent-encoded.
func writeQuery(b *strings.Builder, q string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}#", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

// splitHost splits a request's Host header into a host and a port and
// reports whether it is well formed: a DNS name, an IPv4 address or a
// bracketed IPv6 address, then an optional port of digits.
func splitHost(hp string) (host, port string, ok bool) {
	host = hp
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", false
		}
		if a, err := netip.ParseAddr(hp[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "", "", false
		}
		host, port = hp[:end+1], hp[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", "", false
			}
			port = port[1:]
		}
	} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i+1:]
		if !hostName(host) {
			return "", "", false
		}
	} else if !hostName(host) {
		return "", "", false
	}
	if len(port) > 5 {
		return "", "", false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", "", false
		}
	}
	return host, port, host != ""
}

// hostName reports whether h is letters, digits, '-' and '.', starting
// with a letter or digit: a DNS name or an IPv4 address.
func hostName(h string) bool {
	if h == "" || h[0] == '-' || h[0] == '.' {
		return false
	}
	return validHost(h)
}

// direct answers with a fixed response.
type direct struct {
	status int
	body   []byte
	header http.Header // Content-Type, Content-Length and the configured headers
}

func newDirect(d *schemas.DirectResponse) *direct {
	x := &direct{status: d.Status, body: []byte(d.Body), header: http.Header{}}
	if x.status == 0 {
		x.status = http.StatusOK
	}
	for k, v := range d.Headers {
		x.header.Set(k, v)
	}
	if d.ContentType != "" {
		x.header.Set("Content-Type", d.ContentType)
	}
	if x.status != http.StatusNoContent && x.status != http.StatusNotModified {
		x.header.Set("Content-Length", strconv.Itoa(len(x.body)))
	}
	return x
}

func (x *direct) serve(w http.ResponseWriter, r *http.Request, resp *headerOps) {
	h := w.Header()
	for k, v := range x.header {
		h[k] = append([]string(nil), v...) // a copy: later handlers may edit it
	}
	resp.apply(h)
	w.WriteHeader(x.status)
	if r.Method != http.MethodHead && len(x.body) > 0 {
		_, _ = w.Write(x.body)
	}
}

// requestScheme is the scheme the client used: the first X-Forwarded-Proto
// value when the peer is a trusted proxy (one that ends TLS in front of
// the gateway, whose http-to-https redirect would otherwise loop) and says
// http or https, else the connection's own.
func requestScheme(r *http.Request, trusted bool) string {
	if v := r.Header["X-Forwarded-Proto"]; trusted && len(v) > 0 {
		first, _, _ := strings.Cut(v[0], ",")
		switch p := strings.ToLower(strings.TrimSpace(first)); p {
		case "http", "https":
			return p
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
