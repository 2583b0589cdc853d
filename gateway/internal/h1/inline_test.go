package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/certs/certstest"
)

// streamer answers the inline-streaming tests:
//
//	/small      "small", buffered
//	/flush      "one", flushed, then "two"
//	/big        bigBody (over maxBuffered), Content-Length set
//	/bigchunked bigBody without a Content-Length
//	/trailer    "body", flushed, then the trailer X-Sum: 42
//	/panic      "one", flushed, then a panic
//	/tls        whether r.TLS is set, flushed
//	/head       Content-Length 200000, flushed, for HEAD
//
// Every path it served is recorded, in order.
type streamer struct {
	mu    sync.Mutex
	paths []string
}

var bigBody = strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	s.mu.Unlock()
	f := w.(http.Flusher)
	switch r.URL.Path {
	case "/small":
		_, _ = io.WriteString(w, "small")
	case "/flush":
		_, _ = io.WriteString(w, "one")
		f.Flush()
		_, _ = io.WriteString(w, "two")
	case "/big":
		w.Header().Set("Content-Length", itoa(int64(len(bigBody))))
		for i := 0; i < len(bigBody); i += 4000 {
			_, _ = io.WriteString(w, bigBody[i:min(i+4000, len(bigBody))])
		}
	case "/bigchunked":
		for i := 0; i < len(bigBody); i += 4000 {
			_, _ = io.WriteString(w, bigBody[i:min(i+4000, len(bigBody))])
		}
	case "/trailer":
		w.Header().Set("Trailer", "X-Sum")
		_, _ = io.WriteString(w, "body")
		f.Flush()
		w.Header().Set("X-Sum", "42")
	case "/panic":
		_, _ = io.WriteString(w, "one")
		f.Flush()
		panic(http.ErrAbortHandler)
	case "/tls":
		_, _ = io.WriteString(w, "tls="+boolString(r.TLS != nil))
		f.Flush()
	case "/head":
		w.Header().Set("Content-Length", "200000")
		f.Flush()
		_, _ = io.WriteString(w, strings.Repeat("h", 200000))
	case "/unread":
		// Answers without reading the body.
		_, _ = io.WriteString(w, "unread")
		f.Flush()
	default:
		http.NotFound(w, r)
	}
}

func (s *streamer) served() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// get is a pipelined GET.
func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }

// want is one answer the client must read, in order.
type want struct {
	method string // of the request; "" is GET
	status int
	body   string
	// chunked: the body came in chunks; else with its Content-Length.
	chunked bool
	trailer string // X-Sum
}

// readAnswers reads ws from br in order: each whole, framed as wanted.
func readAnswers(t *testing.T, br *bufio.Reader, ws []want) {
	t.Helper()
	for i, w := range ws {
		method := w.method
		if method == "" {
			method = http.MethodGet
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d: body: %v", i, err)
		}
		if resp.StatusCode != w.status || string(b) != w.body {
			t.Fatalf("answer %d: %d with %d bytes %.40q, want %d with %d bytes %.40q",
				i, resp.StatusCode, len(b), b, w.status, len(w.body), w.body)
		}
		isChunked := len(resp.TransferEncoding) > 0
		if method != http.MethodHead && isChunked != w.chunked {
			t.Fatalf("answer %d: chunked %v, want %v (content length %d)", i, isChunked, w.chunked, resp.ContentLength)
		}
		if got := resp.Trailer.Get("X-Sum"); got != w.trailer {
			t.Fatalf("answer %d: trailer X-Sum %q, want %q", i, got, w.trailer)
		}
		if resp.Close {
			t.Fatalf("answer %d closes the connection", i)
		}
	}
}

// An inline handler that flushes or outgrows the buffer writes its answer
// to the connection itself; the connection then goes on serving the
// requests the client had already sent (pipelined) and those it sends
// later, each answer in order and whole.
func TestInlineStreamKeepsTheConnection(t *testing.T) {
	t.Parallel()
	small := want{status: 200, body: "small"}
	flush := want{status: 200, body: "onetwo", chunked: true}
	big := want{status: 200, body: bigBody}
	bigChunked := want{status: 200, body: bigBody, chunked: true}
	trailer := want{status: 200, body: "body", chunked: true, trailer: "42"}
	tests := []struct {
		name   string
		rounds [][]string // each round: requests written at once
		want   []want
	}{
		{name: "flush then a pipelined request", rounds: [][]string{{"/flush", "/small"}}, want: []want{flush, small}},
		{
			name: "an answer held back for a pipelined request, then a flush",
			// fasthttp would keep the first answer in its writer while the
			// next request was buffered: the flushed one must not pass it.
			rounds: [][]string{{"/small", "/flush", "/small", "/flush"}},
			want:   []want{small, flush, small, flush},
		},
		{name: "1 MiB body then a keep-alive request", rounds: [][]string{{"/big"}, {"/small"}}, want: []want{big, small}},
		{name: "1 MiB body and a pipelined request", rounds: [][]string{{"/big", "/small", "/bigchunked", "/small"}}, want: []want{big, small, bigChunked, small}},
		{name: "trailers then a pipelined request", rounds: [][]string{{"/trailer", "/small"}}, want: []want{trailer, small}},
		{
			name:   "many streamed answers on one connection",
			rounds: [][]string{{"/flush", "/flush", "/flush"}, {"/flush", "/small"}, {"/flush"}, {"/flush"}, {"/flush"}, {"/small"}},
			want:   []want{flush, flush, flush, flush, small, flush, flush, flush, small},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &streamer{}
			addr := start(t, h)
			c, br := dial(t, addr)
			var sent []string
			at := 0
			for _, round := range tc.rounds {
				var raw strings.Builder
				for _, p := range round {
					raw.WriteString(get(p))
				}
				if _, err := io.WriteString(c, raw.String()); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, round...)
				readAnswers(t, br, tc.want[at:at+len(round)])
				at += len(round)
			}
			if got := h.served(); strings.Join(got, " ") != strings.Join(sent, " ") {
				t.Fatalf("served %v, want %v", got, sent)
			}
		})
	}
}

// Over TLS a connection carried on after a streamed answer is still TLS
// to the handler (X-Forwarded-Proto depends on it).
func TestInlineStreamKeepsTLS(t *testing.T) {
	t.Parallel()
	addr, conf := startTLS(t, &streamer{})
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	tlsYes := want{status: 200, body: "tls=yes", chunked: true}
	_, _ = io.WriteString(c, get("/tls")+get("/tls"))
	readAnswers(t, br, []want{tlsYes, tlsYes})
	_, _ = io.WriteString(c, get("/big"))
	readAnswers(t, br, []want{{status: 200, body: bigBody}})
	_, _ = io.WriteString(c, get("/tls")+get("/small"))
	readAnswers(t, br, []want{tlsYes, {status: 200, body: "small"}})
}

// HTTP/1.0 knows no chunks: a streamed answer without a Content-Length
// ends with the connection; with one, the connection stays.
func TestInlineStreamHTTP10(t *testing.T) {
	t.Parallel()
	addr := start(t, &streamer{})
	tests := []struct {
		name, path, body string
		close            bool
	}{
		{name: "flushed", path: "/flush", body: "onetwo", close: true},
		{name: "long", path: "/bigchunked", body: bigBody, close: true},
		{name: "long with a Content-Length", path: "/big", body: bigBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, "GET "+tc.path+" HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.TransferEncoding) > 0 {
				t.Fatalf("an HTTP/1.0 answer with Transfer-Encoding %v", resp.TransferEncoding)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != tc.body {
				t.Fatalf("body of %d bytes, %v", len(b), err)
			}
			if resp.Close != tc.close {
				t.Fatalf("close %v, want %v", resp.Close, tc.close)
			}
			if tc.close {
				if _, err := br.ReadByte(); err == nil {
					t.Fatal("more bytes after a close-delimited body")
				}
				return
			}
			_, _ = io.WriteString(c, "GET /small HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the next answer: %v", err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "small" {
				t.Fatalf("the next answer %q", b)
			}
		})
	}
}

// A HEAD answer flushed inline carries its Content-Length and no body, and
// the next pipelined answer is read where it starts.
func TestInlineStreamHEAD(t *testing.T) {
	t.Parallel()
	addr := start(t, &streamer{})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n"+get("/small"))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != 200000 {
		t.Fatalf("content length %d, want 200000", resp.ContentLength)
	}
	readAnswers(t, br, []want{{status: 200, body: "small"}})
}

// A handler that panics after its answer started streaming aborts the
// connection: the body never ends cleanly (no last chunk) and the request
// after it is not served.
func TestInlineStreamPanicAbortsTheConnection(t *testing.T) {
	t.Parallel()
	h := &streamer{}
	addr := start(t, h)
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, get("/panic")+get("/small"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the body %q of an aborted answer read as whole", b)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("the connection answered a request after an aborted one")
	}
	if got := h.served(); len(got) != 1 {
		t.Fatalf("served %v after the abort", got)
	}
}

// A request body the handler left unread is skipped before the next
// request is read, whatever it holds; one too long to skip closes the
// connection. Its bytes are never served as a request.
func TestInlineStreamSkipsAnUnreadBody(t *testing.T) {
	t.Parallel()
	smuggled := get("/smuggled")
	tests := []struct {
		name  string
		size  int
		close bool
	}{
		{name: "short body", size: 1000},
		{name: "body longer than what fasthttp reads ahead", size: 100 << 10},
		{name: "body over the drain limit", size: maxDrain + 100<<10, close: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &streamer{}
			addr := start(t, h)
			c, br := dial(t, addr)
			body := strings.Repeat(smuggled, tc.size/len(smuggled)+1)
			go func() {
				_, _ = io.WriteString(c, "POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: "+itoa(int64(len(body)))+"\r\n\r\n"+body+get("/small"))
			}()
			readAnswers(t, br, []want{{status: 200, body: "unread", chunked: true}})
			resp, err := http.ReadResponse(br, nil)
			if tc.close {
				if err == nil {
					t.Fatalf("an answer %d after a body too long to skip", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatalf("the next answer: %v", err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != "small" {
					t.Fatalf("the next answer %q", b)
				}
			}
			for _, p := range h.served() {
				if p == "/smuggled" {
					t.Fatal("a request body was served as a request")
				}
			}
		})
	}
}

// Shutdown closes a connection carried on after a streamed answer that
// waits for its next request, as it closes any idle connection, within
// its deadline (fasthttp alone would count it idle only after seconds).
func TestShutdownClosesAnIdleCarriedConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Handler: &streamer{}, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c, br := dial(t, ln.Addr().String())
	_, _ = io.WriteString(c, get("/flush"))
	readAnswers(t, br, []want{{status: 200, body: "onetwo", chunked: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the idle connection is still open after Shutdown")
	}
	if n := s.inCarry.Load(); n != 0 {
		t.Fatalf("%d carrying goroutines outlive Shutdown", n)
	}
}

// A connection carried on after a streamed answer loses the connection at
// the idle timeout when it sends nothing, and at the header timeout when
// it sends a header block slowly, as any kept-alive connection.
func TestInlineStreamSlowClientsLoseTheirConnection(t *testing.T) {
	t.Parallel()
	addr := startTimeouts(t, &streamer{})
	tests := []struct {
		name string
		then string // sent after the streamed answer, and never finished
	}{
		{name: "idle"},
		{name: "partial header block", then: "GET /small HTTP/1.1\r\nHost: x\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, get("/flush"))
			readAnswers(t, br, []want{{status: 200, body: "onetwo", chunked: true}})
			if tc.then != "" {
				_, _ = io.WriteString(c, tc.then)
			}
			readToClose(t, br)
		})
	}
}

// Only a request that may hijack (Upgrade, CONNECT) runs on a worker: the
// handler of any other gets an error from Hijack, not a hang.
func TestInlineHijackFails(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			t.Error("hijacked a request without Upgrade")
			return
		}
		_, _ = io.WriteString(w, "not hijacked")
	}))
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, get("/"))
	readAnswers(t, br, []want{{status: 200, body: "not hijacked"}})
}

// startTLS serves h over TLS on a loopback port until the test ends.
func startTLS(t *testing.T, h http.Handler) (string, *tls.Config) {
	t.Helper()
	ln, client := tlsListener(t)
	serveOn(t, ln, h)
	return ln.Addr().String(), client
}

// tlsListener is a TLS listener on a loopback port, over the lazy read
// deadlines as the data plane has them (LazyDeadlines), and the config of
// a client that trusts its certificate.
func tlsListener(t *testing.T) (net.Listener, *tls.Config) {
	t.Helper()
	ca := certstest.NewCA(t, t.TempDir(), "h1-test")
	leaf := ca.Issue(t, "127.0.0.1", "127.0.0.1")
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(LazyDeadlines(raw), &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	return ln, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// A connection carried on after a streamed answer can still be upgraded:
// the worker's handler hijacks it, with the bytes sent after the request,
// and has it to itself until it returns.
func TestInlineStreamThenUpgrade(t *testing.T) {
	t.Parallel()
	st := &streamer{}
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			st.ServeHTTP(w, r)
			return
		}
		c, brw, ok := upgradeEcho(t, w)
		if !ok {
			return
		}
		defer c.Close()
		for range 2 {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo " + line)
			_ = brw.Flush()
		}
	}))
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, get("/flush")+"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n")
	readAnswers(t, br, []want{{status: 200, body: "onetwo", chunked: true}})
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("answer %v, %v", resp, err)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		if msg != "hello\n" {
			_, _ = io.WriteString(c, msg)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection is open after the hijacking handler returned")
	}
}
