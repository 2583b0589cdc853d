package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/gateway/internal/upstream/rawtest"
	"github.com/gitgate/gitgate/schemas"
)

// seenRequest is what a scripted upstream received.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
	ContentLength     int64
	TransferEncoding  []string
	Body              string
}

// scriptedUpstream answers every request with answer(i) (i counts the
// requests it got) written as raw bytes, closing the connection after an
// answer that says "Connection: close", and records what it received.
type scriptedUpstream struct {
	addr string
	mu   sync.Mutex
	seen []seenRequest
}

func newScriptedUpstream(t *testing.T, answer func(i int, req *http.Request) string) *scriptedUpstream {
	t.Helper()
	u := &scriptedUpstream{}
	srv := rawtest.Start(t, func(w io.Writer, req *http.Request, body []byte, i int) bool {
		h := req.Header.Clone()
		delete(h, "X-Request-Id") // differs per request
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{req.Method, req.RequestURI, req.Host, h, req.ContentLength, req.TransferEncoding, string(body)})
		u.mu.Unlock()
		a := answer(i, req)
		if _, err := io.WriteString(w, a); err != nil {
			return false
		}
		return !req.Close && !strings.Contains(a, "Connection: close\r\n")
	})
	u.addr = srv.Addr
	return u
}

// seenResponse is what a client read: the 1xx answers, then the final one.
type seenResponse struct {
	Informational []string
	Status        int
	Header        http.Header
	Body          string
	Trailer       http.Header
	Err           string // how reading the answer failed
}

// rawExchange writes req on a new connection to addr and reads the answer.
func rawExchange(t *testing.T, addr, req string) seenResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	method, _, _ := strings.Cut(req, " ")
	var got seenResponse
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			got.Err = "reading the answer: " + err.Error()
			return got
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 {
			res.Header.Del("X-Request-Id")
			got.Informational = append(got.Informational, fmt.Sprintf("%d %v", res.StatusCode, res.Header))
			continue
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			got.Err = "reading the body: " + err.Error()
		}
		h := res.Header.Clone()
		delete(h, "Date")
		delete(h, "X-Request-Id")
		got.Status, got.Header, got.Body, got.Trailer = res.StatusCode, h, string(body), res.Trailer
		return got
	}
}

// TestDirectMatchesReverseProxy holds the direct path to ReverseProxy's
// behaviour: every case is served twice by the same route, once with the
// direct path and once with ReverseProxy alone, and the upstream must see
// the same request and the client the same answer. Each case must take the
// direct path when it is on (or must not, for those it leaves to
// ReverseProxy).
func TestDirectMatchesReverseProxy(t *testing.T) {
	t.Parallel()
	ok := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	cases := []struct {
		name    string
		route   schemas.Route
		request string
		answer  func(i int, req *http.Request) string
		direct  bool // the direct path serves it
		trusted bool // the client is a trusted proxy
	}{
		{
			name:    "plain GET",
			request: "GET /a/b?x=1 HTTP/1.1\r\nHost: gw.example\r\nAccept: */*\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
			direct:  true,
		},
		{
			name: "hop-by-hop and forwarding headers from an untrusted client",
			request: "GET /h HTTP/1.1\r\nHost: gw.example\r\nConnection: keep-alive, X-Drop, x-lower\r\nX-Drop: 1\r\nX-Lower: 2\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nTe: gzip\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n" +
				"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n" +
				"X_Forwarded_For: 6.6.6.6\r\nX-Real-Ip: 6.6.6.6\r\nx_real_ip: 6.6.6.6\r\nX_Forwarded_Host: evil\r\nX_FORWARDED_PROTO: https\r\n" +
				"X_Original_Url: /admin\r\nX_Keep_Me: yes\r\nUser-Agent: ua/1\r\nX-Multi: a\r\nX-Multi: b\r\n" +
				"X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /p\r\nX-Original-Url: /o\r\nX-Rewrite-Url: /r\r\n\r\n",
			answer: func(int, *http.Request) string { return ok },
			direct: true,
		},
		{
			name: "forwarding headers from a trusted proxy",
			request: "GET /h HTTP/1.1\r\nHost: gw.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: front\r\nX-Forwarded-Proto: https\r\n" +
				"Forwarded: for=6.6.6.6\r\nX-Real-Ip: 6.6.6.6\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /p\r\nX-Original-Url: /o\r\n" +
				"X-Rewrite-Url: /r\r\nX_Real_Ip: 7.7.7.7\r\nX_Forwarded_For: 7.7.7.7\r\nConnection: X-Real-Ip\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
			direct:  true,
			trusted: true,
		},
		{
			name:    "an invalid traceparent and its tracestate",
			request: "GET /tp HTTP/1.1\r\nHost: gw.example\r\nTraceparent: 00-xyz\r\nTracestate: vendor=x\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
			direct:  true,
		},
		{
			name: "a valid traceparent and its tracestate",
			request: "GET /tp HTTP/1.1\r\nHost: gw.example\r\nTraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
				"Tracestate: vendor=x\r\n\r\n",
			answer: func(int, *http.Request) string { return ok },
			direct: true,
		},
		{
			name: "hop-by-hop headers that Connection does not name, both ways",
			request: "GET /h2 HTTP/1.1\r\nHost: gw.example\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\n" +
				"Proxy-Connection: keep-alive\r\nTe: gzip\r\nUpgrade: h2c\r\nTrailer: X-T\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=4\r\nProxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\n" +
					"Upgrade: h2\r\nTe: x\r\nContent-Length: 2\r\n\r\nok"
			},
			direct: true,
		},
		{
			name:    "query that Go's parser would read differently",
			request: "GET /q?a=1;b=2&c=%zz&d=4 HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
			direct:  true,
		},
		{
			name:    "small POST body",
			request: "POST /p HTTP/1.1\r\nHost: gw.example\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 201 Created\r\nLocation: /p/1\r\nContent-Length: 0\r\n\r\n"
			},
			direct: true,
		},
		{
			name:    "empty POST",
			request: "POST /p HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 0\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
			direct:  true,
		},
		{
			name:    "response hop-by-hop headers and cookies",
			request: "GET /r HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nKeep-Alive: timeout=4\r\nProxy-Authenticate: Basic\r\n" +
					"Upgrade: h2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nCache-Control: no-store\r\nContent-Length: 3\r\n\r\nabc"
			},
			direct: true,
		},
		{
			name:    "chunked answer with announced and unannounced trailers",
			request: "GET /t HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer: func(int, *http.Request) string {
				// With a Content-Type: whether net/http sniffs one for
				// ReverseProxy depends on whether its flush timer runs
				// before the first write.
				return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\nX-Late: 1\r\n\r\n"
			},
			direct: true,
		},
		{
			name:    "early hints before the answer",
			request: "GET /e HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + ok
			},
			direct: true,
		},
		{
			name:    "event stream",
			request: "GET /sse HTTP/1.1\r\nHost: gw.example\r\nAccept: text/event-stream\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n\r\ndata: 1\n\ndata: 2\n\n"
			},
			direct: true,
		},
		{
			name:    "HEAD keeps the Content-Length",
			request: "HEAD /h HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer:  func(int, *http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" },
			direct:  true,
		},
		{
			name:    "304 and 204",
			request: "GET /c HTTP/1.1\r\nHost: gw.example\r\nIf-None-Match: \"x\"\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n"
			},
			direct: true,
		},
		{
			name: "header transforms, rewrite and retry on status",
			route: schemas.Route{
				Rewrite:         &schemas.Rewrite{Host: "inner.example"},
				RequestHeaders:  &schemas.HeaderOps{Set: map[string]string{"X-Set": "s"}, Add: map[string]string{"X-Multi": "c"}, Remove: []string{"X-Gone"}},
				ResponseHeaders: &schemas.HeaderOps{Set: map[string]string{"X-Resp": "r"}, Remove: []string{"Server"}},
				Retries:         &schemas.Retries{Attempts: 1, On: []string{schemas.Retry502}},
			},
			request: "GET /x HTTP/1.1\r\nHost: gw.example\r\nX-Multi: a\r\nX-Multi: b\r\nX-Gone: 1\r\nX_Gone: 1\r\n\r\n",
			answer: func(i int, _ *http.Request) string {
				if i%2 == 0 {
					return "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\nbad!"
				}
				return "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\n\r\nok"
			},
			direct: true,
		},
		{
			name:    "an upstream that breaks off the body",
			request: "GET /cut HTTP/1.1\r\nHost: gw.example\r\n\r\n",
			answer: func(int, *http.Request) string {
				return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
			},
			direct: true,
		},
		{
			name:    "Expect goes through ReverseProxy",
			request: "POST /x HTTP/1.1\r\nHost: gw.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
			answer:  func(int, *http.Request) string { return ok },
		},
		{
			name:    "TE trailers goes through ReverseProxy",
			request: "GET /x HTTP/1.1\r\nHost: gw.example\r\nTe: trailers\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
		},
		{
			name:    "a chunked request body goes through ReverseProxy",
			request: "POST /x HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			answer:  func(int, *http.Request) string { return ok },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var seen [2][]seenRequest
			var answers [2]seenResponse
			for i, direct := range []bool{true, false} {
				up := newScriptedUpstream(t, c.answer)
				rt, fw := newDirectRoute(t, "http://"+up.addr, c.route)
				if c.trusted {
					rt.opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
				}
				fw.noDirect = !direct
				var taken atomic.Int64
				fw.onDirect = func() { taken.Add(1) }
				srv := httptest.NewServer(rt)
				t.Cleanup(srv.Close)
				answers[i] = rawExchange(t, srv.Listener.Addr().String(), c.request)
				up.mu.Lock()
				seen[i] = up.seen
				up.mu.Unlock()
				if direct && (taken.Load() > 0) != c.direct {
					t.Fatalf("direct path took %d attempts, want it taken: %v", taken.Load(), c.direct)
				}
			}
			if !reflect.DeepEqual(seen[0], seen[1]) {
				t.Errorf("upstream saw, direct path:\n%s\nReverseProxy:\n%s", dumpSeen(seen[0]), dumpSeen(seen[1]))
			}
			if !reflect.DeepEqual(answers[0], answers[1]) {
				t.Errorf("client read, direct path:\n%+v\nReverseProxy:\n%+v", answers[0], answers[1])
			}
		})
	}
}

func dumpSeen(s []seenRequest) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, "  %s %s host=%s cl=%d te=%v body=%q\n", r.Method, r.URI, r.Host, r.ContentLength, r.TransferEncoding, r.Body)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s: %q\n", k, r.Header[k])
		}
	}
	return b.String()
}

// newDirectRoute is newRoute that also returns the route's forwarder.
func newDirectRoute(t *testing.T, url string, r schemas.Route) (*Route, *Forwarder) {
	t.Helper()
	opts := &Options{}
	r.Backends = []schemas.Backend{{Upstream: "u", Weight: 100}}
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": {Targets: []string{url}}}, Routes: map[string]schemas.Route{"r": r}}
	cfg.ApplyDefaults()
	pool, err := upstream.NewPool("u", cfg.Upstreams["u"], upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fw := NewForwarder(pool, opts)
	rt, err := NewRoute("r", cfg.Routes["r"], map[string]*Forwarder{"u": fw}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt, fw
}

// TestDirectLeavesClientRequestAlone: the outgoing header shares the
// client's values; a header "add" and the hop-by-hop removal must not
// change the request the route was handed (a retry builds from it again).
func TestDirectLeavesClientRequestAlone(t *testing.T) {
	t.Parallel()
	up := newScriptedUpstream(t, func(int, *http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" })
	rt, fw := newDirectRoute(t, "http://"+up.addr, schemas.Route{
		RequestHeaders: &schemas.HeaderOps{Add: map[string]string{"X-Multi": "added"}},
	})
	var taken atomic.Int64
	fw.onDirect = func() { taken.Add(1) }
	backing := []string{"a", "spare", "spare"}
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/x", nil)
	r.Header = http.Header{"X-Multi": backing[:1], "Connection": {"X-Drop"}, "X-Drop": {"1"}}
	rt.ServeHTTP(httptest.NewRecorder(), r)
	if taken.Load() != 1 {
		t.Fatalf("direct path took %d attempts, want 1", taken.Load())
	}
	if backing[1] != "spare" {
		t.Errorf("the header add wrote into the client's value slice: %q", backing)
	}
	if want := (http.Header{"X-Multi": {"a"}, "Connection": {"X-Drop"}, "X-Drop": {"1"}}); !reflect.DeepEqual(r.Header, want) {
		t.Errorf("client request header now %v, want %v", r.Header, want)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.seen) != 1 || !reflect.DeepEqual(up.seen[0].Header["X-Multi"], []string{"a", "added"}) || up.seen[0].Header["X-Drop"] != nil {
		t.Errorf("upstream saw %s", dumpSeen(up.seen))
	}
}

// TestDirectFlushesStreamHeadFirst: an event stream's head reaches the
// client before its first event, however late that event comes.
func TestDirectFlushesStreamHeadFirst(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "data: late\n\n")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	defer close(release)
	rt, fw := newDirectRoute(t, up.URL, schemas.Route{})
	var taken atomic.Int64
	fw.onDirect = func() { taken.Add(1) }
	gw := httptest.NewServer(rt)
	t.Cleanup(gw.Close)
	got := make(chan error, 1)
	go func() {
		res, err := http.Get(gw.URL + "/events")
		if err == nil {
			_ = res.Body.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream's head did not reach the client before its first event")
	}
	if taken.Load() != 1 {
		t.Fatalf("direct path took %d attempts, want 1", taken.Load())
	}
}

// TestDirectKeepsGatewayHeadersNamedInConnection: a client that names the
// gateway's own forwarding and correlation headers in Connection cannot
// have them dropped on the way upstream: the names are removed from what
// the client sent, before the gateway sets its own.
func TestDirectKeepsGatewayHeadersNamedInConnection(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	t.Cleanup(up.Close)
	rt, fw := newDirectRoute(t, up.URL, schemas.Route{})
	var taken atomic.Int64
	fw.onDirect = func() { taken.Add(1) }
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/x", nil)
	r.RemoteAddr = "192.0.2.7:4711"
	r.Header = http.Header{
		"Connection":      {"X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id"},
		"X-Forwarded-For": {"6.6.6.6"},
	}
	rt.ServeHTTP(httptest.NewRecorder(), r)
	if taken.Load() != 1 {
		t.Fatalf("direct path took %d attempts, want 1", taken.Load())
	}
	h := <-got
	for k, want := range map[string]string{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "gw.example"} {
		if h.Get(k) != want {
			t.Errorf("upstream got %s %q, want %q", k, h.Get(k), want)
		}
	}
	if h.Get("X-Request-Id") == "" {
		t.Error("upstream got no X-Request-Id")
	}
}

// TestOutgoingReleaseRecyclesHeader: a direct attempt's pooled outgoing
// request keeps its header map for the next attempt only while the copy
// of the client's header held at most headers.MaxPooledFields names.
func TestOutgoingReleaseRecyclesHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		names, peak int
		keep        bool
	}{
		{name: "ordinary", names: 10, peak: 10, keep: true},
		{name: "many fields", names: 400, peak: 400},
		{name: "many fields, most named by Connection", names: 3, peak: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			og := &outgoing{hdr: http.Header{}}
			before := og.hdr
			for i := range tc.names {
				og.hdr[fmt.Sprintf("X-F%d", i)] = []string{"v"}
			}
			og.req.Header = og.hdr
			og.release(tc.peak)
			if len(og.hdr) != 0 || og.req.Header != nil {
				t.Fatalf("released with %d names and a request header %v", len(og.hdr), og.req.Header)
			}
			if kept := reflect.ValueOf(og.hdr).UnsafePointer() == reflect.ValueOf(before).UnsafePointer(); kept != tc.keep {
				t.Fatalf("header map kept: %v, want %v", kept, tc.keep)
			}
		})
	}
}
