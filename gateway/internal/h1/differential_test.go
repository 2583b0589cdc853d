package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// delivered is what a handler learned of one request: every field of the
// *http.Request that the gateway's core reads, and the body as read.
type delivered struct {
	Method, RequestURI, Proto, Host string
	Scheme, URLHost, Path, RawPath  string
	RawQuery                        string
	Header                          http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	Body                            string
	BodyErr                         bool // reading the body failed
	Trailer                         http.Header
}

// recorder is a handler that writes down every request it serves.
type recorder struct {
	mu  sync.Mutex
	got []delivered
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := delivered{
		Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto, Host: r.Host,
		Scheme: r.URL.Scheme, URLHost: r.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), ContentLength: r.ContentLength, TransferEncoding: slices.Clone(r.TransferEncoding), Close: r.Close,
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	d.Body, d.BodyErr = string(b), err != nil
	d.Trailer = r.Trailer.Clone()
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// take returns the requests written down since the last take.
func (rc *recorder) take() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.got
	rc.got = nil
	return got
}

// feed writes raw on a new connection to addr, half-closes it and reads
// until the server closes it: by then every handler the bytes reached has
// returned. A server that closes with unread bytes resets the connection.
func feed(t *testing.T, addr string, raw []byte) {
	t.Helper()
	c, br := dial(t, addr)
	go func() {
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the answers from %s: %v", addr, err)
	}
}

// diff says how a request this server delivered differs from the one
// net/http delivered (want), "" when it does not in a way that matters.
// Three differences pass: this server closes a connection that net/http
// keeps (Close), hands the handler at most maxTrailers trailer names, and
// reads a trailer name written with white space before its colon without
// it.
// A body that either side failed to read to its end is compared up to
// what both read: such a request is the connection's last.
func (d delivered) diff(want delivered) string {
	if d.BodyErr || want.BodyErr {
		n := min(len(d.Body), len(want.Body))
		d.Body, want.Body = d.Body[:n], want.Body[:n]
		d.BodyErr, want.BodyErr = false, false
		d.Trailer, want.Trailer = nil, nil
	}
	if d.Close {
		want.Close = true
	}
	if len(want.Trailer) > 0 {
		// fasthttp trims white space before a trailer field's colon
		// ("x :" reads as X); net/http keeps it in the name, which is
		// then not canonicalised either.
		tr := make(http.Header, len(want.Trailer))
		for k, v := range want.Trailer {
			k = textproto.CanonicalMIMEHeaderKey(strings.TrimRight(k, " \t"))
			tr[k] = append(tr[k], v...)
		}
		want.Trailer = tr
	}
	if len(d.Trailer) == maxTrailers && len(want.Trailer) > maxTrailers {
		// This server takes the first maxTrailers names only.
		want.Trailer = want.Trailer.Clone()
		maps.DeleteFunc(want.Trailer, func(k string, _ []string) bool { _, ok := d.Trailer[k]; return !ok })
	}
	var out []string
	dv, wv := reflect.ValueOf(d), reflect.ValueOf(want)
	for i := range dv.NumField() {
		a, b := dv.Field(i).Interface(), wv.Field(i).Interface()
		if h, ok := a.(http.Header); ok {
			if !maps.EqualFunc(h, b.(http.Header), slices.Equal) {
				out = append(out, fmt.Sprintf("%s: %q, net/http %q", dv.Type().Field(i).Name, a, b))
			}
			continue
		}
		if !reflect.DeepEqual(a, b) && !(reflect.ValueOf(a).Kind() == reflect.Slice && reflect.ValueOf(a).Len() == 0 && reflect.ValueOf(b).Len() == 0) {
			out = append(out, fmt.Sprintf("%s: %q, net/http %q", dv.Type().Field(i).Name, a, b))
		}
	}
	return strings.Join(out, "; ")
}

// FuzzServerDeliversWhatNetHTTPDelivers feeds the same bytes, on one
// connection each, to this server and to net/http's, both real on
// loopback, and holds every request this server hands its handler to the
// one net/http hands its handler in the same place: same method, target,
// URL, Host, header, framing, body and trailers. This server may stop
// earlier (it refuses what net/http tolerates: repeated Content-Length,
// obs-fold, bare LF, chunked HTTP/1.0, Content-Length beside chunked), but
// it never reads a byte stream differently: a request it delivers that
// net/http does not, or delivers otherwise, is a desync a smuggler could
// use between it and a net/http hop.
func FuzzServerDeliversWhatNetHTTPDelivers(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: t\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: t\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.0\r\n\r\n",
		"GET http://other/abs?q HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
		"GET /%2e%2e/a%2Fb HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\nCookie: c=d\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	ours, theirs := &recorder{}, &recorder{}
	addr := start(f, ours)
	netAddr := startNet(f, theirs)
	f.Fuzz(func(t *testing.T, raw []byte) {
		feed(t, addr, raw)
		feed(t, netAddr, withoutEmptyLinesBeforeRequests(raw))
		got, want := ours.take(), theirs.take()
		for i, d := range got {
			if i >= len(want) {
				t.Fatalf("request %d (%s %q) was served; net/http served %d requests of\n%q", i, d.Method, d.RequestURI, len(want), raw)
			}
			if s := d.diff(want[i]); s != "" {
				t.Fatalf("request %d differs from net/http's: %s\nbytes: %q", i, s, raw)
			}
		}
	})
}

// withoutEmptyLinesBeforeRequests returns raw without the empty lines
// (CRLF or LF) that come where a request line is due, found with net/http's
// own request reader. This server skips them, as RFC 9112 section 2.2
// advises ("SHOULD ignore at least one empty line"), where net/http
// refuses the request; every other byte is net/http's to judge.
func withoutEmptyLinesBeforeRequests(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	rest := raw
	for {
		next := rest
		for {
			if bytes.HasPrefix(next, []byte("\r\n")) {
				next = next[2:]
			} else if bytes.HasPrefix(next, []byte("\n")) {
				next = next[1:]
			} else {
				break
			}
		}
		// Only lines a request follows go: net/http's server looks
		// past a message's end (for a trailer's terminator), so the
		// bytes after the last request stay as they are.
		r := bytes.NewReader(next)
		br := bufio.NewReader(r)
		req, err := http.ReadRequest(br)
		if err != nil {
			break
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			break
		}
		n := len(next) - r.Len() - br.Buffered()
		out, rest = append(out, next[:n]...), next[n:]
	}
	return append(out, rest...)
}
