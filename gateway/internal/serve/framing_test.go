package serve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// TestFramingOverEitherServer sends hostile and unusual HTTP/1.1 framing on
// raw connections and checks every answer on the connection and what the
// upstream received. It runs over the HTTP/1.1 server the package's run
// was given (GITGATE_TEST_HTTP1_SERVER); where the two servers answer
// differently, both answers are written down and the fasthttp one is never
// less strict.
func TestFramingOverEitherServer(t *testing.T) {
	t.Parallel()
	log := &requestLog{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		log.add(r)
		switch r.URL.Path {
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Header().Set("X-Body", string(b))
		_, _ = io.WriteString(w, "up")
	}))
	t.Cleanup(up.Close)
	backends := []schemas.Backend{{Upstream: "app", Weight: 100}}
	addr := serveConfig(t, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes:    map[string]schemas.Route{"all": {Match: schemas.Match{Path: "/"}, Backends: backends}},
	})
	fast := testHTTP1() == HTTP1Fast

	type answer struct {
		status int
		body   string // the X-Body the upstream echoed, for 200s
	}
	tests := []struct {
		name string
		raw  string
		// heads are the methods of the requests on the connection, for
		// reading their answers ("" is GET).
		heads []string
		want  []answer
		seen  []string // method and path the upstream got, in order
		// fastWant and fastSeen replace want and seen over fasthttp.
		fastWant []answer
		fastSeen []string
		fastSkip bool
		// continueBody, when set, is sent after the 100 Continue.
		continueBody string
	}{
		{
			name: "pipelined requests are answered in order",
			raw:  "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{200, ""}, {200, "abc"}, {200, ""}},
			seen: []string{"GET /one", "POST /two", "GET /three"},
		},
		{
			name:  "keep-alive after HEAD",
			raw:   "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			heads: []string{"HEAD", ""},
			want:  []answer{{200, ""}, {200, ""}},
			seen:  []string{"HEAD /h", "GET /after"},
		},
		{
			name: "keep-alive after 304",
			raw:  "GET /not-modified HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{304, ""}, {200, ""}},
			seen: []string{"GET /not-modified", "GET /after"},
		},
		{
			name: "keep-alive after a 1xx",
			raw:  "GET /early HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{200, ""}, {200, ""}},
			seen: []string{"GET /early", "GET /after"},
		},
		{
			name:         "expect 100-continue",
			raw:          "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
			continueBody: "body",
			want:         []answer{{200, "body"}},
			seen:         []string{"POST /c"},
		},
		{
			name: "an expectation other than 100-continue",
			raw:  "POST /x HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 3\r\n\r\nabcGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			// Refused and the connection closed, never forwarded.
			want: []answer{{417, ""}},
		},
		{
			name:         "100-continue among other expectations",
			raw:          "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue, foo\r\n\r\n",
			continueBody: "body",
			want:         []answer{{200, "body"}},
			seen:         []string{"POST /c"},
			// fasthttp sends 100 Continue only for an Expect of exactly
			// 100-continue, and waits for the body otherwise.
			fastSkip: true,
		},
		{
			name: "chunked body",
			raw:  "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{200, "abcde"}, {200, ""}},
			seen: []string{"POST /ch", "GET /after"},
		},
		{
			name: "two equal content-lengths",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
			want: []answer{{200, "abc"}},
			seen: []string{"POST /a"},
			// fasthttp refuses any repeated Content-Length.
			fastWant: []answer{{400, ""}},
		},
		{
			name: "content-length with a sign",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
			want: []answer{{400, ""}},
		},
		{
			name: "transfer-encoding other than chunked",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
			want: []answer{{501, ""}},
			// fasthttp's parser refuses it before the adapter sees it.
			fastWant: []answer{{400, ""}},
		},
		{
			name: "chunked in HTTP/1.0",
			raw:  "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
			// net/http ignores Transfer-Encoding in HTTP/1.0 and reads the
			// Content-Length, then closes the connection.
			want: []answer{{200, "0"}},
			seen: []string{"POST /a"},
			// fasthttp refuses it as faulty framing (RFC 9112 section 6.1).
			fastWant: []answer{{400, ""}},
		},
		{
			name: "obs-fold",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
			// net/http unfolds it into one value.
			want: []answer{{200, ""}},
			seen: []string{"GET /a"},
			// The adapter refuses it (RFC 9112 section 5.2).
			fastWant: []answer{{400, ""}},
		},
		{
			name: "bare LF line endings",
			raw:  "GET /a HTTP/1.1\nHost: x\n\n",
			want: []answer{{200, ""}},
			seen: []string{"GET /a"},
			// RFC 9112 section 2.2 lets a server refuse them; fasthttp
			// waits for a CRLF header end and closes the connection at the
			// header timeout, which this test does not wait for.
			fastSkip: true,
		},
		{
			name: "space before the colon",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-A : one\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "control byte in a header name",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-\x01A: one\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "control byte in a header value",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-A: o\x01ne\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "two Host headers",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "no Host header",
			raw:  "GET /a HTTP/1.1\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "absolute-form target",
			raw:  "GET http://x/abs HTTP/1.1\r\nHost: y\r\n\r\n",
			want: []answer{{200, ""}},
			seen: []string{"GET /abs"},
		},
		{
			name: "asterisk-form target",
			raw:  "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
			// Answered by the server itself, never routed.
			want: []answer{{200, ""}},
		},
		{
			name: "space in the target",
			raw:  "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{400, ""}},
		},
		{
			name: "HTTP/2 version on an HTTP/1 connection",
			raw:  "GET /a HTTP/2.0\r\nHost: x\r\n\r\n",
			want: []answer{{505, ""}},
			// fasthttp refuses the version as a malformed request line.
			fastWant: []answer{{400, ""}},
		},
	}
	for _, tc := range tests {
		// Not parallel: each case inspects what the shared upstream saw.
		t.Run(tc.name, func(t *testing.T) {
			if fast && tc.fastSkip {
				t.Skip("see the case's comment")
			}
			if fast && tc.fastWant != nil {
				tc.want, tc.seen = tc.fastWant, tc.fastSeen
			}
			log.take()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			if tc.continueBody != "" {
				if _, err := io.WriteString(conn, tc.raw); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusContinue {
					t.Fatalf("want 100 Continue before the body, got %v %v", resp, err)
				}
				if _, err := io.WriteString(conn, tc.continueBody); err != nil {
					t.Fatal(err)
				}
			} else {
				go func() { _, _ = io.WriteString(conn, tc.raw) }()
			}
			var got []string
			for i := range tc.want {
				req := &http.Request{Method: http.MethodGet}
				if i < len(tc.heads) && tc.heads[i] != "" {
					req.Method = tc.heads[i]
				}
				resp, err := http.ReadResponse(br, req)
				for err == nil && resp.StatusCode < 200 {
					resp, err = http.ReadResponse(br, req) // interim answers
				}
				if err != nil {
					t.Fatalf("reading answer %d: %v (so far %v)", i+1, err, got)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Body")))
			}
			var want []string
			for _, a := range tc.want {
				want = append(want, fmt.Sprintf("%d %s", a.status, a.body))
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("answers %q, want %q", got, want)
			}
			var seen []string
			for _, r := range log.take() {
				seen = append(seen, r.method+" "+r.path)
			}
			if strings.Join(seen, "|") != strings.Join(tc.seen, "|") {
				t.Errorf("upstream saw %q, want %q", seen, tc.seen)
			}
		})
	}
}
