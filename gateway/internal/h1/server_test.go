package h1

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h on a loopback port until the test ends.
func start(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, h)
	return ln.Addr().String()
}

// serveOn serves h on ln until the test ends, then shuts the server down.
func serveOn(t testing.TB, ln net.Listener, h http.Handler) {
	t.Helper()
	s := New(Options{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// upgradeEcho hijacks w's connection and answers 101 for the "echo"
// protocol; ok is false (the test marked failed) when the hijack fails.
func upgradeEcho(t *testing.T, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	t.Helper()
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil, nil, false
	}
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	_ = brw.Flush()
	return c, brw, true
}

// getHead sends the raw request on a new connection and reads the
// answer's head; its body is read from the connection as it comes.
func getHead(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// dial opens a raw connection with a hang guard.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// A flushed response reaches the client while the handler still runs
// (server-sent events), chunked.
func TestFlushedResponseArrivesBeforeTheHandlerReturns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	resp := getHead(t, addr, get("/events"))
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	line := make([]byte, len("data: one\n\n"))
	if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "data: one\n\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "data: two\n\n" {
		t.Fatalf("second event %q, %v", rest, err)
	}
}

// A request body reaches the handler as it arrives: the handler answers
// after reading the first half, before the client sends the second.
func TestRequestBodyIsStreamed(t *testing.T) {
	t.Parallel()
	const half = 1 << 20
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, half)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "got half")
		w.(http.Flusher).Flush()
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, " and "+itoa(n))
	}))
	c, br := dial(t, addr)
	body := make([]byte, 2*half)
	_, _ = rand.Read(body)
	_, _ = io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: "+itoa(int64(len(body)))+"\r\n\r\n")
	if _, err := c.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("got half"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "got half" {
		t.Fatalf("answer before the second half: %q, %v", first, err)
	}
	if _, err := c.Write(body[half:]); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != " and "+itoa(half) {
		t.Fatalf("rest %q", rest)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A hijacked connection carries the bytes the client sent after the
// request, and fasthttp leaves it alone until the handler returns.
func TestHijackKeepsBufferedBytes(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, ok := upgradeEcho(t, w)
		if !ok {
			return
		}
		defer c.Close()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	c, br := dial(t, addr)
	// The first message travels with the request, in one write.
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("answer %v, %v", resp, err)
	}
	got, err := br.ReadString('\n')
	if err != nil || got != "echo hello\n" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A client that closes its connection while the handler waits cancels
// the request's context, as net/http's background read does: on a first
// request, after quick requests on the same connection (the watch timer
// armed and rearming), and after an idle spell (the timer disarmed).
func TestClientGoneCancelsTheContext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		quick int           // quick requests before the slow one
		idle  time.Duration // pause before the slow one
	}{
		{name: "first request"},
		{name: "after quick requests", quick: 50},
		{name: "after an idle spell", quick: 3, idle: 3 * watchEvery / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			canceled := make(chan error, 1)
			entered := make(chan struct{})
			addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/quick" {
					_, _ = io.WriteString(w, "ok")
					return
				}
				close(entered)
				select {
				case <-r.Context().Done():
					canceled <- r.Context().Err()
				case <-time.After(5 * time.Second):
					canceled <- nil
				}
			}))
			c, br := dial(t, addr)
			for range tc.quick {
				_, _ = io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("quick request: %v", err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
			}
			time.Sleep(tc.idle)
			_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			<-entered
			_ = c.Close()
			if err := <-canceled; !errors.Is(err, context.Canceled) {
				t.Fatalf("context ended with %v, want canceled", err)
			}
		})
	}
}

// A response longer than the buffer is streamed with the Content-Length
// the handler set, and the connection stays usable.
func TestLongResponseKeepsItsContentLength(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 3*maxBuffered+7)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", itoa(int64(len(body))))
		for i := 0; i < len(body); i += 1000 {
			_, _ = io.WriteString(w, body[i:min(i+1000, len(body))])
		}
	}))
	c, br := dial(t, addr)
	for range 2 {
		_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Fatalf("content length %d, want %d", resp.ContentLength, len(body))
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != body {
			t.Fatalf("body of %d bytes, %v", len(got), err)
		}
	}
}

// A handler that panics with http.ErrAbortHandler before answering gets
// the connection closed without an answer; one that declared more than
// it wrote gets it closed before the body could pass for whole, and the
// request after it is never read.
func TestAbortedAnswersCloseTheConnection(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "short")
	}))
	for _, path := range []string{"/abort", "/short"} {
		t.Run(path, func(t *testing.T) {
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if path == "/abort" {
				if err == nil {
					t.Fatalf("got an answer %d to an aborted request", resp.StatusCode)
				}
				return
			}
			if err == nil {
				if _, err := io.ReadAll(resp.Body); err == nil {
					t.Fatal("a short body read to its end")
				}
			}
			if _, err := http.ReadResponse(br, nil); err == nil {
				t.Fatal("the connection served a request after a short body")
			}
		})
	}
}

// A header value holding CR or LF cannot split the response: fasthttp,
// as net/http, writes them as spaces.
func TestResponseHeaderNewlinesCannotSplitTheAnswer(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-A"] = []string{"one\r\nX-Injected: 1"}
		_, _ = io.WriteString(w, "ok")
	}))
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Header.Get("X-Injected"); v != "" {
		t.Fatalf("the answer carries an injected header %q", v)
	}
	if v := resp.Header.Get("X-A"); v != "one  X-Injected: 1" {
		t.Fatalf("X-A %q", v)
	}
}

// Trailers the handler announces or sets with http.TrailerPrefix follow
// the body, whether it streamed or not, and a prefixed one alone too.
func TestTrailersFollowTheBody(t *testing.T) {
	t.Parallel()
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		announce := r.URL.Path != "/prefixed-only"
		if announce {
			w.Header().Set("Trailer", "X-Sum")
		}
		_, _ = io.WriteString(w, "body")
		if r.URL.Path == "/flushed" {
			w.(http.Flusher).Flush()
		}
		if announce {
			w.Header().Set("X-Sum", "42")
			w.Header().Add("X-Sum", "43")
		}
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		w.Header().Add(http.TrailerPrefix+"X-Late", "later")
	}))
	for _, tc := range []struct {
		path string
		want http.Header
	}{
		{"/flushed", http.Header{"X-Sum": {"42", "43"}, "X-Late": {"late", "later"}}},
		{"/buffered", http.Header{"X-Sum": {"42", "43"}, "X-Late": {"late", "later"}}},
		{"/prefixed-only", http.Header{"X-Late": {"late", "later"}}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "body" {
				t.Fatalf("body %q, %v", b, err)
			}
			if len(resp.Trailer) != len(tc.want) {
				t.Errorf("trailers %v, want %v", resp.Trailer, tc.want)
			}
			for k, v := range tc.want {
				if got := resp.Trailer[k]; !slices.Equal(got, v) {
					t.Errorf("trailer %s %q, want %q, every value in order (trailers %v)", k, got, v, resp.Trailer)
				}
			}
		})
	}
}

// The answer's Date is the server's, whatever the handler set (a known
// difference from net/http, in the package doc): fasthttp manages it.
func TestDateIsTheServers(t *testing.T) {
	t.Parallel()
	const old = "Mon, 01 Jan 2001 00:00:00 GMT"
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", old)
		_, _ = io.WriteString(w, "ok")
	}))
	resp := getHead(t, addr, get("/"))
	dates := resp.Header.Values("Date")
	if len(dates) != 1 {
		t.Fatalf("Date values %q, want one", dates)
	}
	d, err := http.ParseTime(dates[0])
	if err != nil || dates[0] == old || time.Since(d).Abs() > time.Minute {
		t.Fatalf("Date %q (%v): want the server's clock, not the handler's %q", dates[0], err, old)
	}
}

// An answer announcing thousands of trailers, with thousands of headers,
// sends the first maxTrailers of them and nothing more (fasthttp's cost
// per trailer name grows with the headers set: 0.3 s per answer at 6,000
// and 6,000), and prefixed trailers count against the same bound.
func TestTrailersAreBounded(t *testing.T) {
	t.Parallel()
	const many = 3000
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, many)
		for i := range names {
			names[i] = fmt.Sprintf("X-T%d", i)
			w.Header().Set(fmt.Sprintf("X-H%d", i), "h")
		}
		w.Header().Set("Trailer", strings.Join(names, ", "))
		_, _ = io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		for _, n := range names {
			w.Header().Set(n, "t")
		}
		for i := range many {
			w.Header().Set(http.TrailerPrefix+fmt.Sprintf("X-P%d", i), "p")
		}
	}))
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "body" {
		t.Fatalf("body %q, %v", b, err)
	}
	if len(resp.Trailer) != maxTrailers {
		t.Fatalf("%d trailers, want %d", len(resp.Trailer), maxTrailers)
	}
	for i := range maxTrailers {
		if got := resp.Trailer.Get(fmt.Sprintf("X-T%d", i)); got != "t" {
			t.Fatalf("trailer X-T%d %q, want t (trailers %v)", i, got, resp.Trailer)
		}
	}
	if got := resp.Header.Get("X-H2999"); got != "h" {
		t.Fatalf("header X-H2999 %q, want h", got)
	}
}
