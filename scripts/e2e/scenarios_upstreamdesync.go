package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "i-upstream-unsolicited-response",
		criterion: "an upstream on raw TCP answers HEAD with Content-Length: 70 and no body, a 204, a 304 and a " +
			"complete body, and after each, once the gateway has answered the client, writes a second response " +
			"nobody asked for on the same connection; five later requests from another client each get the " +
			"upstream's answer to their own request id and never the injected response",
		run: upstreamUnsolicitedResponse,
	})
}

// injectedBody is the body of the response nobody asked for.
const injectedBody = "injected"

// desyncUpstream is a keep-alive HTTP/1.1 upstream written by hand. GET
// answers "id=<X-Test-Seq>". A request to /poison/<kind> gets the answer
// of kind (head: HEAD's Content-Length: 70 without body; 204; 304; body),
// then waits for a channel on inject, writes a response nobody asked for on
// the same connection and closes that channel.
type desyncUpstream struct {
	ln     net.Listener
	inject chan chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newDesyncUpstream() (*desyncUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the raw upstream: %w", err)
	}
	u := &desyncUpstream{ln: ln, inject: make(chan chan struct{}), conns: map[net.Conn]bool{}}
	u.wg.Go(u.accept)
	return u, nil
}

func (u *desyncUpstream) URL() string { return "http://" + u.ln.Addr().String() }

func (u *desyncUpstream) accept() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns[c] = true
		u.mu.Unlock()
		u.wg.Go(func() { u.serve(c) })
	}
}

func (u *desyncUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		var first string
		switch req.URL.Path {
		case "/poison/head":
			first = "HTTP/1.1 200 OK\r\nContent-Length: 70\r\n\r\n"
		case "/poison/204":
			first = "HTTP/1.1 204 No Content\r\n\r\n"
		case "/poison/304":
			first = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
		case "/poison/body":
			first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		default:
			b := "id=" + req.Header.Get("X-Test-Seq")
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+b); err != nil {
				return
			}
			continue
		}
		if _, err := io.WriteString(c, first); err != nil {
			return
		}
		done, ok := <-u.inject
		if !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(injectedBody))+"\r\n\r\n"+injectedBody)
		close(done)
	}
}

func (u *desyncUpstream) Close() {
	_ = u.ln.Close()
	close(u.inject)
	u.mu.Lock()
	for c := range u.conns {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func upstreamUnsolicitedResponse(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	up, err := newDesyncUpstream()
	if err != nil {
		return err
	}
	t.Cleanup(up.Close)
	if _, err := t.pushServed(ctx, st, harness.ConfigYAML(up.URL(), "c2", nil), "c2: the raw upstream", "c2"); err != nil {
		return err
	}
	// Each client is a process of its own as far as the gateway can tell:
	// a new connection for every request.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + st.GatewayAddr
	cases := []struct{ method, path string }{
		{http.MethodHead, "/poison/head"},
		{http.MethodDelete, "/poison/204"},
		{http.MethodGet, "/poison/304"},
		{http.MethodGet, "/poison/body"},
	}
	id := 0
	for _, c := range cases {
		req, _ := http.NewRequestWithContext(ctx, c.method, base+c.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.method, c.path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		// The gateway has answered: its upstream connection is idle now,
		// and the upstream writes a response nobody asked for on it.
		done := make(chan struct{})
		select {
		case up.inject <- done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("%s %s did not reach the raw upstream", c.method, c.path)
		}
		<-done
		for range 5 {
			id++
			want := "id=" + strconv.Itoa(id)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/next", nil)
			req.Header.Set("X-Test-Seq", strconv.Itoa(id))
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("request %d after %s %s: %w", id, c.method, c.path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(b) != want {
				return fmt.Errorf("after %s %s, request %d got %d %q, want the answer to its own request %q",
					c.method, c.path, id, resp.StatusCode, b, want)
			}
		}
		t.Logf("%s %s then an unsolicited response: the next 5 requests got their own answers", c.method, c.path)
	}
	return nil
}
