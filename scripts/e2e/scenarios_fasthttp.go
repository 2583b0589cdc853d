package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "fh-fasthttp-data-plane",
		criterion: "a gateway started with --http1-server fasthttp logs that fasthttp serves HTTP/1.1, serves a pushed " +
			"commit, streams a 1 MiB download, sees clients that abort an endless download (in-flight back to 0), " +
			"and answers a request with both Content-Length and chunked framing then closes the connection, so " +
			"the request hidden after it never reaches the upstream",
		run: fasthttpDataPlane,
	})
}

func fasthttpDataPlane(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{GatewayExtraArgs: []string{"--http1-server", "fasthttp"}})
	if err != nil {
		return err
	}
	logText, err := os.ReadFile(st.Gateway.Log)
	if err != nil {
		return err
	}
	if !strings.Contains(string(logText), `"http1":"fasthttp"`) {
		return fmt.Errorf("the gateway log does not say fasthttp serves HTTP/1.1 (see %s)", st.Gateway.Log)
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	var smuggled int
	seen := make(chan string, 16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.URL.Path:
		default:
		}
		switch r.URL.Path {
		case "/big":
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/mib":
			w.Header().Set("Content-Length", fmt.Sprint(32*len(chunk)))
			for range 32 {
				_, _ = w.Write(chunk)
			}
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(up.Close)
	if _, err := t.pushServed(ctx, st, abortConfigYAML(up.URL, "c2"), "c2: fasthttp", "c2"); err != nil {
		return err
	}
	t.Logf("c2 pushed and served over fasthttp")

	resp, err := http.Get("http://" + st.GatewayAddr + "/mib")
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(32*len(chunk)) || resp.ContentLength != n {
		return fmt.Errorf("GET /mib: %d bytes of Content-Length %d, %v", n, resp.ContentLength, err)
	}
	t.Logf("1 MiB download streamed with its Content-Length")

	for range 3 {
		if err := readHeadAndClose(ctx, st.GatewayAddr, "/big"); err != nil {
			return err
		}
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "in-flight back to 0 after 3 aborted downloads", func() (bool, error) {
		s, err := st.Admin.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, tg := range s.Upstreams["app"] {
			if tg.InFlight != 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	t.Logf("3 aborted endless downloads: in-flight back to 0")

	for len(seen) > 0 {
		<-seen
	}
	c, err := net.DialTimeout("tcp", st.GatewayAddr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")
	br := bufio.NewReader(c)
	first, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("the answer to the request with both framings: %w", err)
	}
	_, _ = io.Copy(io.Discard, first.Body)
	if second, err := http.ReadResponse(br, nil); err == nil {
		return fmt.Errorf("a second answer (%d) on the connection after both framings", second.StatusCode)
	}
	for len(seen) > 0 {
		if p := <-seen; p == "/smuggled" {
			smuggled++
		}
	}
	if smuggled != 0 {
		return fmt.Errorf("the upstream received the smuggled request")
	}
	t.Logf("both framings: answered %d, connection closed, nothing smuggled", first.StatusCode)
	return nil
}
