package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream/rawtest"
	"github.com/gitgate/gitgate/schemas"
)

func fastPool(t *testing.T, addr string, mut func(*schemas.Upstream)) *Pool {
	t.Helper()
	spec := defaulted(schemas.Upstream{Targets: []string{"http://" + addr}})
	if mut != nil {
		mut(&spec)
	}
	p, err := NewPool("u", spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// do sends one request through the pool's transport and reads the body
// the way ReverseProxy does (read to the end, then Close).
func do(ctx context.Context, rt http.RoundTripper, method, addr, body string) (*http.Response, string, error) {
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/p?q=1", rb)
	if err != nil {
		return nil, "", err
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res, string(b), err
}

func TestFastTransportResponses(t *testing.T) {
	t.Parallel()
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	cases := []struct {
		name     string
		method   string
		reqBody  string
		answer   func(w io.Writer, req *http.Request, body []byte, i int) bool
		wantBody []string // per request
		wantCode int
		accepts  int64 // connections the upstream saw after all requests
	}{
		{
			name:   "chunked response keeps the connection",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
				return true
			},
			wantBody: []string{"abcde", "abcde", "abcde"}, wantCode: 200, accepts: 1,
		},
		{
			name:   "connection close from upstream is honoured",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
				return false
			},
			wantBody: []string{"ok", "ok", "ok"}, wantCode: 200, accepts: 3,
		},
		{
			name:   "body until close",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\n\r\nuntil-eof")
				return false
			},
			wantBody: []string{"until-eof", "until-eof"}, wantCode: 200, accepts: 2,
		},
		{
			name:   "stale pooled connection is retried on a fresh one",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, ok)
				return false // closes without saying so: the pooled conn goes stale
			},
			wantBody: []string{"ok", "ok", "ok"}, wantCode: 200, accepts: 3,
		},
		{
			name:   "HEAD has no body whatever Content-Length says",
			method: http.MethodHead,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
				return true
			},
			wantBody: []string{"", "", ""}, wantCode: 200, accepts: 1,
		},
		{
			name:   "204 without body",
			method: http.MethodDelete,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 204 No Content\r\n\r\n")
				return true
			},
			wantBody: []string{"", ""}, wantCode: 204, accepts: 1,
		},
		{
			name:   "304 without body",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
				return true
			},
			wantBody: []string{"", ""}, wantCode: 304, accepts: 1,
		},
		{
			name:   "large body",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				body := strings.Repeat("x", 1<<20)
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
				return true
			},
			wantBody: []string{strings.Repeat("x", 1<<20), strings.Repeat("x", 1<<20)}, wantCode: 200, accepts: 1,
		},
		{
			name:   "chunked wins over Content-Length",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
				return true
			},
			wantBody: []string{"hi", "hi"}, wantCode: 200, accepts: 1,
		},
		{
			name:    "small request body is sent with its length",
			method:  http.MethodPost,
			reqBody: "payload",
			answer: func(w io.Writer, req *http.Request, body []byte, _ int) bool {
				b := req.Method + " " + req.URL.String() + " " + strconv.FormatInt(req.ContentLength, 10) + " " + string(body)
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+b)
				return true
			},
			wantBody: []string{"POST /p?q=1 7 payload", "POST /p?q=1 7 payload"}, wantCode: 200, accepts: 1,
		},
		{
			name:   "informational responses are skipped",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+ok)
				return true
			},
			wantBody: []string{"ok", "ok"}, wantCode: 200, accepts: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := rawtest.Start(t, c.answer)
			rt := fastPool(t, s.Addr, nil).Transport()
			for i, want := range c.wantBody {
				res, body, err := do(context.Background(), rt, c.method, s.Addr, c.reqBody)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if res.StatusCode != c.wantCode || body != want {
					t.Fatalf("request %d: %d %.40q, want %d %.40q", i, res.StatusCode, body, c.wantCode, want)
				}
			}
			if got := s.Accepts(); got != c.accepts {
				t.Errorf("upstream accepted %d connections, want %d", got, c.accepts)
			}
		})
	}
}

func TestFastTransportFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		method  string
		body    string
		answer  func(w io.Writer, req *http.Request, body []byte, i int) bool
		maxHead int64
		timeout time.Duration
		wantErr func(error) bool
	}{
		{
			name:   "response head over the limit",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 4000)+"\r\nContent-Length: 2\r\n\r\nok")
				return true
			},
			maxHead: 1024,
			wantErr: func(err error) bool { return errors.Is(err, errHeadTooLarge) },
		},
		{
			name:   "slow upstream ends with the context's cause",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				time.Sleep(500 * time.Millisecond)
				return false
			},
			timeout: 50 * time.Millisecond,
			wantErr: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		{
			name:   "unrequested switch of protocols",
			method: http.MethodGet,
			answer: func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
				_, _ = io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
				return true
			},
			wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "switched protocols") },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := rawtest.Start(t, c.answer)
			p := fastPool(t, s.Addr, nil)
			if c.maxHead > 0 {
				p.fast.maxHead = c.maxHead
			}
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			_, _, err := do(ctx, p.Transport(), c.method, s.Addr, c.body)
			if !c.wantErr(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if n := len((*p.fast.conns.Load())[s.Addr].idle); n != 0 {
				t.Errorf("%d connections kept after a failed exchange", n)
			}
		})
	}
}

func TestFastTransportSlowPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mut  func(*http.Request)
		fast bool
	}{
		{"plain GET", func(*http.Request) {}, true},
		{"small body", func(r *http.Request) { r.Body, r.ContentLength = io.NopCloser(strings.NewReader("ab")), 2 }, true},
		{"streamed body", func(r *http.Request) { r.Body, r.ContentLength = io.NopCloser(strings.NewReader("ab")), -1 }, false},
		{"large body", func(r *http.Request) { r.Body, r.ContentLength = io.NopCloser(strings.NewReader("ab")), maxFastBody+1 }, false},
		{"upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }, false},
		{"expect", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, false},
		{"te trailers", func(r *http.Request) { r.Header.Set("Te", "trailers") }, false},
		{"request trailers", func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }, false},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
			c.mut(r)
			if got := fastEligible(r); got != c.fast {
				t.Errorf("fastEligible = %v, want %v", got, c.fast)
			}
		})
	}
}

// okUpstream is a scripted upstream that answers every request with a
// two-byte 200 and keeps the connection.
func okUpstream(t *testing.T) *rawtest.Server {
	t.Helper()
	return rawtest.Start(t, func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
}

func TestFastTransportMaxConnsUsesTransport(t *testing.T) {
	t.Parallel()
	s := okUpstream(t)
	p := fastPool(t, s.Addr, func(u *schemas.Upstream) { u.MaxConnsPerTarget = 1 })
	if len(*p.fast.conns.Load()) != 0 {
		t.Fatal("a pool with a connection cap must not use the fast path")
	}
	if _, body, err := do(context.Background(), p.Transport(), http.MethodGet, s.Addr, ""); err != nil || body != "ok" {
		t.Fatalf("got %q, %v", body, err)
	}
}

func TestFastTransport1xxTrace(t *testing.T) {
	t.Parallel()
	s := rawtest.Start(t, func(w io.Writer, _ *http.Request, _ []byte, _ int) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	p := fastPool(t, s.Addr, nil)
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, strconv.Itoa(code)+" "+h.Get("Link"))
			return nil
		},
	})
	if _, body, err := do(ctx, p.Transport(), http.MethodGet, s.Addr, ""); err != nil || body != "ok" {
		t.Fatalf("got %q, %v", body, err)
	}
	if len(got) != 1 || got[0] != "103 </a.css>" {
		t.Errorf("1xx seen: %q", got)
	}
}

func TestFastTransportCloseIdle(t *testing.T) {
	t.Parallel()
	s := okUpstream(t)
	p := fastPool(t, s.Addr, nil)
	if _, _, err := do(context.Background(), p.Transport(), http.MethodGet, s.Addr, ""); err != nil {
		t.Fatal(err)
	}
	cp := (*p.fast.conns.Load())[s.Addr]
	if n := len(cp.idle); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
	p.Close()
	if n := len(cp.idle); n != 0 {
		t.Fatalf("%d idle connections after Close", n)
	}
	// A request after Close still works; its connection is not kept.
	if _, _, err := do(context.Background(), p.Transport(), http.MethodGet, s.Addr, ""); err != nil {
		t.Fatal(err)
	}
	if n := len(cp.idle); n != 0 {
		t.Fatalf("%d idle connections kept after Close", n)
	}
}

// A connection idle for longer than idleTimeout is not reused: the next
// request dials, and the stale connection is closed.
func TestFastTransportIdleTimeout(t *testing.T) {
	t.Parallel()
	s := okUpstream(t)
	p := fastPool(t, s.Addr, nil)
	get := func() {
		t.Helper()
		if _, _, err := do(context.Background(), p.Transport(), http.MethodGet, s.Addr, ""); err != nil {
			t.Fatal(err)
		}
	}
	get()
	get()
	if n := s.Accepts(); n != 1 {
		t.Fatalf("%d connections for two requests in a row, want 1 (reused)", n)
	}
	cp := (*p.fast.conns.Load())[s.Addr]
	cp.mu.Lock()
	cp.idle[0].since -= idleTimeout + time.Second // idle for longer than the timeout
	cp.mu.Unlock()
	get()
	if n := s.Accepts(); n != 2 {
		t.Fatalf("%d connections after the idle timeout, want 2 (a new one)", n)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if n := len(cp.idle); n != 1 {
		t.Fatalf("%d idle connections, want 1: the stale one closed", n)
	}
}

// A ResponseBuffer serves one round trip after another: each response
// has its own header, none of an earlier one's, and the header values a
// caller kept of an earlier response (the proxy shares them with the
// client's answer) stay as they were.
func TestResponseBufferReuse(t *testing.T) {
	t.Parallel()
	s := rawtest.Start(t, func(w io.Writer, _ *http.Request, _ []byte, i int) bool {
		if i%2 == 0 {
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nX-First: 1\r\nX-Both: a\r\nContent-Length: 2\r\n\r\nok")
		} else {
			_, _ = io.WriteString(w, "HTTP/1.1 204 No Content\r\nX-Both: b\r\nX-Second: 2\r\n\r\n")
		}
		return true
	})
	p := fastPool(t, s.Addr, nil)
	var buf ResponseBuffer
	get := func() (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, kept, err := p.RoundTripDirect(req, &buf)
		if err != nil || kept {
			t.Fatalf("round trip: kept %v, %v", kept, err)
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b)
	}
	res, body := get()
	first, both := res.Header["X-First"], res.Header["X-Both"]
	if res.StatusCode != 200 || body != "ok" || len(first) != 1 || first[0] != "1" || len(both) != 1 || both[0] != "a" {
		t.Fatalf("first answer: %d %q %v", res.StatusCode, body, res.Header)
	}
	res, body = get()
	want := http.Header{"X-Both": {"b"}, "X-Second": {"2"}}
	if res.StatusCode != 204 || body != "" || !reflect.DeepEqual(res.Header, want) {
		t.Fatalf("second answer: %d %q %v, want 204 %v", res.StatusCode, body, res.Header, want)
	}
	if first[0] != "1" || both[0] != "a" {
		t.Fatalf("the first answer's kept values changed to %q %q", first, both)
	}
	if n := s.Accepts(); n != 1 {
		t.Fatalf("%d connections for two requests in a row, want 1", n)
	}
}

// RoundTripDirect says when the request went to the http.Transport, which
// may still use it after returning: the proxy recycles only the others.
func TestRoundTripDirectReportsTheSlowPath(t *testing.T) {
	t.Parallel()
	s := okUpstream(t)
	p := fastPool(t, s.Addr, nil)
	for _, tc := range []struct {
		name     string
		header   http.Header
		body     string
		wantKept bool
	}{
		{name: "plain GET", wantKept: false},
		{name: "small body", body: "abc", wantKept: false},
		{name: "TE", header: http.Header{"Te": {"trailers"}}, wantKept: true},
		{name: "Expect", header: http.Header{"Expect": {"100-continue"}}, body: "abc", wantKept: true},
		{name: "body over the fast path's bound", body: strings.Repeat("b", maxFastBody+1), wantKept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rb io.Reader
			if tc.body != "" {
				rb = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/", rb)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			var buf ResponseBuffer
			res, kept, err := p.RoundTripDirect(req, &buf)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if kept != tc.wantKept {
				t.Errorf("kept = %v, want %v", kept, tc.wantKept)
			}
		})
	}
}

// FuzzWriteRequest checks that what writeRequest accepts reads back as
// the same request, and that no value can smuggle a header or a second
// request.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/a?b=c", "example.com", "X-A", "1", "")
	f.Add("POST", "/", "h:8080", "X-B", "v\r\nX-Injected: 1", "body")
	f.Add("PUT", "/%2F", "h", "Bad Name", "v", "")
	f.Fuzz(func(t *testing.T, method, uri, host, name, value, body string) {
		req, err := http.NewRequest(method, "http://"+host+uri, nil)
		if err != nil || req.Host == "" || len(body) > maxFastBody {
			return
		}
		req.Header[name] = []string{value}
		var sb strings.Builder
		bw := bufio.NewWriter(&sb)
		if err := writeRequest(bw, req, []byte(body)); err != nil {
			return
		}
		_ = bw.Flush()
		got, err := http.ReadRequest(bufio.NewReader(strings.NewReader(sb.String())))
		if err != nil {
			return // a method or path net/http's reader refuses is not ours to judge
		}
		b, _ := io.ReadAll(got.Body)
		if string(b) != body {
			t.Fatalf("body %q read back as %q", body, b)
		}
		for k := range got.Header {
			if k != "Content-Length" && k != name && textproto.CanonicalMIMEHeaderKey(name) != k {
				t.Fatalf("header %q appeared from %q: %q", k, name, value)
			}
		}
	})
}

// TestFastTransportUnsolicitedBytes: bytes that an upstream sends after a
// complete response, whether at once or after the connection went back to
// the pool, never reach a later request. Each case's first answer is
// followed by an injected response; the next requests must get the
// upstream's real answer to their own request id, never the injected one.
func TestFastTransportUnsolicitedBytes(t *testing.T) {
	t.Parallel()
	const injected = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"
	cases := []struct {
		name   string
		method string
		first  string // the first answer
		late   bool   // injected once the first exchange is over, else in the same write
	}{
		{"HEAD with Content-Length then a late response", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 70\r\n\r\n", true},
		{"HEAD with Content-Length and a body at once", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 70\r\n\r\n", false},
		{"bytes after a 204", http.MethodDelete, "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"bytes after a 304", http.MethodGet, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", true},
		{"bytes after a complete body", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
		{"bytes after a complete chunked body", http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true},
		{"bytes in the same write as a complete body", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inject := make(chan struct{})
			injectedDone := make(chan struct{})
			s := rawtest.Start(t, func(w io.Writer, req *http.Request, _ []byte, i int) bool {
				if i == 0 {
					if !c.late {
						_, _ = io.WriteString(w, c.first+injected)
						close(injectedDone)
						return true
					}
					_, _ = io.WriteString(w, c.first)
					<-inject // the proxy has consumed the answer and pooled the connection
					_, _ = io.WriteString(w, injected)
					close(injectedDone)
					return true
				}
				b := "id=" + req.Header.Get("X-Request-Id")
				_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+b)
				return true
			})
			rt := fastPool(t, s.Addr, nil).Transport()
			if _, _, err := do(context.Background(), rt, c.method, s.Addr, ""); err != nil {
				t.Fatalf("first request: %v", err)
			}
			if c.late {
				close(inject)
			}
			<-injectedDone
			for _, id := range []string{"2", "3", "4"} {
				req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/p", nil)
				req.Header.Set("X-Request-Id", id)
				res, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %s: %v", id, err)
				}
				b, err := io.ReadAll(res.Body)
				_ = res.Body.Close()
				if err != nil {
					t.Fatalf("request %s: reading body: %v", id, err)
				}
				if string(b) != "id="+id {
					t.Fatalf("request %s got %q, want the answer to its own request %q", id, b, "id="+id)
				}
			}
		})
	}
}

// BenchmarkProbe is the cost that every reuse of a pooled connection pays
// for its check for unsolicited bytes: one non-blocking peek.
func BenchmarkProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := newProber(c)
	b.ReportAllocs()
	for b.Loop() {
		if !p.alive() {
			b.Fatal("a quiet connection probed as not alive")
		}
	}
}

// BenchmarkWriteRequest writes a typical proxied request head.
func BenchmarkWriteRequest(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/items?page=2", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = http.Header{
		"Accept":            {"*/*"},
		"User-Agent":        {"curl/8.5.0"},
		"X-Forwarded-For":   {"10.0.0.1"},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host":  {"api.example.com"},
		"X-Request-Id":      {"0af7651916cd43dd8448eb211c80319c"},
	}
	bw := bufio.NewWriterSize(io.Discard, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeRequest(bw, req, nil); err != nil {
			b.Fatal(err)
		}
		_ = bw.Flush()
	}
}

// writeRequestURI writes what url.URL.RequestURI returns.
func TestWriteRequestURI(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"http://h/", "http://h", "http://h/a/b?x=1&y=2", "http://h/a?", "http://h/a%2Fb?q",
		"http://h/caf%C3%A9", "http://h/a b", "http:opaque?q=1", "http://h//double", "http://h/?",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		bw := bufio.NewWriter(&sb)
		writeRequestURI(bw, u)
		_ = bw.Flush()
		if got, want := sb.String(), u.RequestURI(); got != want {
			t.Errorf("%q: wrote %q, RequestURI is %q", raw, got, want)
		}
	}
}
