package serve

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// cannedUpstream answers every request with the bytes it holds, and
// closes a connection once it has been idle for 100 ms.
type cannedUpstream struct {
	ln     net.Listener
	answer atomic.Pointer[[]byte]
}

func startCannedUpstream(t testing.TB) *cannedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &cannedUpstream{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return u
}

func (u *cannedUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		// A kept-alive connection idle for 100 ms is closed; until then
		// every request on it gets the answer. (An upstream that closed
		// right after answering would race the gateway's reuse of the
		// connection: a POST sent as it closes cannot be sent again.)
		_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		var length int64
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
				length, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.CopyN(io.Discard, br, length); err != nil {
			return
		}
		if _, err := c.Write(*u.answer.Load()); err != nil {
			return
		}
	}
}

// answerSeen is what a client saw of one answer, less what the two
// servers choose alike but write differently: the framing (Content-Length
// or chunked, which each server picks by its own buffering) and the Date
// (the fasthttp server's is its own, a documented difference), an empty
// Content-Type (the fasthttp server writes none), and a header field named
// in the answer's Trailer (the fasthttp server sends it after the body).
type answerSeen struct {
	Status  int
	Header  http.Header
	Body    string
	BodyErr bool
	Close   bool
	Trailer http.Header
}

func (a answerSeen) String() string {
	return fmt.Sprintf("%d %q body %q (error %v) close %v trailer %q", a.Status, a.Header, a.Body, a.BodyErr, a.Close, a.Trailer)
}

// askTwice sends two requests of the given method and HTTP version, one
// after the other, on one connection to addr and returns what the client
// saw of each answer; the second is missing when the first closed the
// connection or could not be read. 1xx answers are skipped, as a client
// does (the fasthttp server passes none on).
func askTwice(t *testing.T, addr, method string, http10 bool, announced http.Header) []answerSeen {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	proto, extra := "HTTP/1.1", ""
	if http10 {
		proto, extra = "HTTP/1.0", "Connection: keep-alive\r\n"
	}
	if method == http.MethodPost {
		extra += "Content-Length: 4\r\n\r\nbody"
	} else {
		extra += "\r\n"
	}
	var seen []answerSeen
	for i := range 2 {
		if i == 1 && method == http.MethodPost {
			// The second request checks that the connection is in step,
			// and is a GET: a POST on a kept-alive upstream connection
			// that the upstream closes without saying so cannot be sent
			// again (a 502 on either server, by timing alone).
			method, extra = http.MethodGet, strings.TrimSuffix(extra, "Content-Length: 4\r\n\r\nbody")+"\r\n"
		}
		if _, err := fmt.Fprintf(c, "%s /a%d %s\r\nHost: x\r\n%s", method, i, proto, extra); err != nil {
			return seen
		}
		var resp *http.Response
		for {
			resp, err = http.ReadResponse(br, &http.Request{Method: method})
			if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
				break
			}
		}
		if err != nil {
			if i == 0 {
				seen = append(seen, answerSeen{Status: -1})
			}
			return seen
		}
		body, err := io.ReadAll(resp.Body)
		h := resp.Header.Clone()
		for _, k := range []string{"Date", "Content-Length", "Transfer-Encoding", "X-Request-Id"} {
			delete(h, k)
		}
		// fasthttp sends a header field whose name the answer announces
		// as a trailer after the body, as a trailer (to an HTTP/1.0
		// client, not at all).
		for k := range resp.Trailer {
			delete(h, k)
		}
		for k := range announced {
			delete(h, k)
		}
		// fasthttp keeps the content type in a field of its own and
		// writes none when it is empty.
		if ct, ok := h["Content-Type"]; ok && len(ct) == 1 && ct[0] == "" {
			delete(h, "Content-Type")
		}
		// Announced trailers that never came are not compared, nor the
		// Trailer header that announces them: net/http announces any
		// name the upstream did, a valid token or not (and to an HTTP/1.0
		// client, which gets no trailers); the fasthttp server only
		// valid ones.
		delete(h, "Trailer")
		tr := resp.Trailer.Clone()
		maps.DeleteFunc(tr, func(_ string, vv []string) bool { return len(vv) == 0 })
		a := answerSeen{Status: resp.StatusCode, Header: h, Body: string(body), BodyErr: err != nil, Close: resp.Close, Trailer: tr}
		seen = append(seen, a)
		if a.BodyErr || a.Close {
			return seen
		}
	}
	return seen
}

// FuzzUpstreamAnswersReachClientsAlike has an upstream answer with the
// fuzzer's bytes and holds what a client sees through the gateway served by
// fasthttp (the default) to what it sees through the gateway served by
// net/http: status, header, body, trailers, and whether the connection
// stays in step for the next request, for a GET, a HEAD or a POST, over
// HTTP/1.1 or a kept-alive HTTP/1.0. An upstream is a peer the gateway
// does not trust; an answer that one server passes on otherwise than the
// other (a header it lets through, a body it cuts elsewhere) is a way for
// that upstream to split or desync the client's connection on one of them.
func FuzzUpstreamAnswersReachClientsAlike(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: t\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nX-T: head\r\n\r\n2\r\nok\r\n0\r\nX-T: tail\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nten bytes!",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\nX-Secret: s\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nX-Bare: lf\nContent-Length: 1\n\nx",
		"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
	} {
		f.Add([]byte(seed), byte(0), false)
	}
	// A HEAD's answer has no body whatever it announces, and a POST or an
	// HTTP/1.0 client changes what the servers may keep open.
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
	} {
		f.Add([]byte(seed), byte(1), false)
		f.Add([]byte(seed), byte(2), true)
	}
	up := startCannedUpstream(f)
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{"http://" + up.ln.Addr().String()}}},
		Routes:    map[string]schemas.Route{"all": {Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}}},
	}
	fast := serveConfigWith(f, func(c *Config) { c.HTTP1Server = HTTP1Fast }, cfg)
	ref := serveConfigWith(f, func(c *Config) { c.HTTP1Server = HTTP1Net }, cfg)
	f.Fuzz(func(t *testing.T, answer []byte, m byte, http10 bool) {
		method := [...]string{http.MethodGet, http.MethodHead, http.MethodPost}[int(m)%3]
		up.answer.Store(&answer)
		var announced http.Header // the trailer names the answer announces
		if res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), &http.Request{Method: method}); err == nil {
			announced = res.Trailer
		}
		differ := func() string {
			got, want := askTwice(t, fast, method, http10, announced), askTwice(t, ref, method, http10, announced)
			if len(got) != len(want) {
				return fmt.Sprintf("%d answers read through fasthttp, %d through net/http:\n%v\n%v", len(got), len(want), got, want)
			}
			for i := range got {
				if !sameAnswer(got[i], want[i]) {
					return fmt.Sprintf("answer %d:\nfasthttp %v\nnet/http %v", i, got[i], want[i])
				}
			}
			return ""
		}
		// Asked twice before it fails: the upstream's idle close can meet
		// the gateway's reuse of the connection, and a request sent into
		// it is answered 502 on either server, by timing alone; a
		// difference in the servers repeats.
		if d := differ(); d != "" {
			if d2 := differ(); d2 != "" {
				t.Fatalf("%s (HTTP/1.0 %v), the upstream's %q: %s\nasked again: %s", method, http10, answer, d, d2)
			}
		}
	})
}

// sameAnswer compares two answers' answerSeen fields; a body either
// client failed to read to its end is compared up to what both read, and
// its trailers not at all.
func sameAnswer(a, b answerSeen) bool {
	if a.BodyErr || b.BodyErr {
		n := min(len(a.Body), len(b.Body))
		if a.BodyErr != b.BodyErr || a.Body[:n] != b.Body[:n] {
			return false
		}
		a.Body, b.Body = "", ""
		a.Trailer, b.Trailer = nil, nil
	}
	eq := func(x, y http.Header) bool { return maps.EqualFunc(x, y, slices.Equal) }
	return a.Status == b.Status && eq(a.Header, b.Header) && a.Body == b.Body && a.Close == b.Close && eq(a.Trailer, b.Trailer)
}
