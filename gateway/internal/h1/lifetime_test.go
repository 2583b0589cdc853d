package h1

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A request body that outlives its handler (the upstream transport may
// still read it in its own goroutine after RoundTrip returned) reads
// nothing once the handler has returned, as net/http's does: the exchange
// and fasthttp's stream behind it are reused by the next request, whose
// body a late read must never get.
func TestBodyReadAfterTheHandlerReturnsFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first string // the request whose handler keeps its body
	}{
		{name: "content-length", first: "POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
		{name: "chunked", first: "POST /keep HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kept := make(chan io.Reader, 1)
			type late struct {
				got  string
				err  error
				next string
			}
			lateRead := make(chan late, 1)
			addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/keep":
					kept <- r.Body // returns without reading it
				case "/next":
					old := <-kept
					buf := make([]byte, 16)
					n, err := old.Read(buf)
					own, _ := io.ReadAll(r.Body)
					lateRead <- late{got: string(buf[:n]), err: err, next: string(own)}
				}
			}))
			c, br := dial(t, addr)
			_, _ = io.WriteString(c, tc.first+"POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld")
			for range 2 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			got := <-lateRead
			if got.got != "" || got.err == nil || errors.Is(got.err, io.EOF) {
				t.Errorf("late read of the first body: %q, %v; want nothing and an error", got.got, got.err)
			}
			if got.next != "world" {
				t.Errorf("the second handler read %q, want %q", got.next, "world")
			}
		})
	}
}

// A goroutine the handler started (as the upstream transport's body
// writer is) may be reading the body when the handler returns: the
// adapter waits for that read, and fasthttp's reuse of the connection's
// buffers never races with it (run with -race).
func TestBodyReaderOutlivingTheHandlerDoesNotRace(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	started := make(chan struct{}, 64)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keep" {
			_, _ = io.Copy(io.Discard, r.Body)
			return
		}
		body := r.Body
		wg.Go(func() {
			started <- struct{}{}
			buf := make([]byte, 1)
			for {
				if _, err := body.Read(buf); err != nil {
					return
				}
			}
		})
		<-started
	}))
	c, br := dial(t, addr)
	const rounds = 20
	var raw strings.Builder
	for range rounds {
		raw.WriteString("POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("k", 64))
		raw.WriteString("POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("n", 64))
	}
	go func() { _, _ = io.WriteString(c, raw.String()) }()
	for i := 0; i < 2*rounds; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break // the connection may close when a read was cut short
		}
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	_ = c.Close()
	wg.Wait()
}

// A streamed response whose client is gone ends the request body too:
// fasthttp releases the connection's buffers as soon as its write fails,
// while the handler may still be reading the upload.
func TestBodyEndsWhenTheStreamedAnswerFails(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "streaming")
		w.(http.Flusher).Flush()
		chunk := make([]byte, 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		_, err := r.Body.Read(make([]byte, 8))
		got <- err
	}))
	c, br := dial(t, addr)
	// fasthttp calls the handler once the first 8 KiB of the body came.
	_, _ = io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("p", 16<<10))
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	select {
	case err := <-got:
		if !errors.Is(err, http.ErrBodyReadAfterClose) {
			t.Fatalf("body read after the answer failed: %v, want %v", err, http.ErrBodyReadAfterClose)
		}
	case <-time.After(5 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("the body read after the answer failed is still blocked")
	}
}

// A body that fails to parse (a malformed chunk or trailer) gives the
// handler an error that does not carry the bytes the client sent: the
// core puts the error in its answer and its log, and fasthttp's messages
// quote up to a whole buffer of the connection, the next pipelined
// request included.
func TestBodyErrorsDoNotQuoteTheConnection(t *testing.T) {
	t.Parallel()
	const marker = "SECRET-NEXT-REQUEST"
	tests := []struct {
		name string
		tail string // after a valid first chunk
	}{
		{name: "forbidden trailer", tail: "0\r\nHost: evil\r\n\r\nGET /" + marker + " HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "trailer over the buffer", tail: "0\r\nX-T: " + marker + strings.Repeat("y", 70<<10) + "\r\n\r\n"},
		{name: "bad chunk size", tail: "zz" + marker + "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				if err == nil {
					got <- "no error"
					return
				}
				got <- err.Error()
			}))
			c, _ := dial(t, addr)
			go func() {
				_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"+tc.tail)
			}()
			msg := <-got
			if msg == "no error" || strings.Contains(msg, marker) {
				t.Fatalf("body error %.300q quotes the connection (or is missing)", msg)
			}
		})
	}
}
