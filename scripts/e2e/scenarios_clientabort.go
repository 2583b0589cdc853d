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
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "j-client-aborts-download",
		criterion: "clients read the response head of an endless download through the gateway and close: the " +
			"upstream's in-flight count (gateway status) goes back to 0; with the circuit breaker half-open, an " +
			"aborted download is its probe, and the next request still probes (200) and closes the breaker",
		run: clientAbortsDownload,
	})
}

// abortConfigYAML is upstream app (one target, a breaker that opens on one
// failure and half-opens after a second) behind catch-all route main.
func abortConfigYAML(target, label string) string {
	return fmt.Sprintf(`upstreams:
  app:
    targets: [%q]
    circuitBreaker:
      consecutiveFailures: 1
      openDuration: 1s
      halfOpenRequests: 1
routes:
  main:
    match:
      path: /
      pathType: prefix
    backends:
      - upstream: app
        weight: 100
    responseHeaders:
      set:
        X-Config: %q
`, target, label)
}

// readHeadAndClose sends GET path on a new connection, reads the response
// head and closes the connection with the body unread.
func readHeadAndClose(ctx context.Context, addr, path string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dialing the gateway: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		return fmt.Errorf("sending GET %s: %w", path, err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the status line of GET %s: %w", path, err)
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("GET %s: status line %q, want 200", path, strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the response head of GET %s: %w", path, err)
		}
		if line == "\r\n" {
			return nil
		}
	}
}

func clientAbortsDownload(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusBadGateway)
		case "/big":
			w.WriteHeader(http.StatusOK)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(up.Close)
	if _, err := t.pushServed(ctx, st, abortConfigYAML(up.URL, "c2"), "c2: a breaker in front of a download", "c2"); err != nil {
		return err
	}
	idle := func() (bool, error) {
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
	}
	breaker := func(want string) func() (bool, error) {
		return func() (bool, error) {
			s, err := st.Admin.Status(ctx)
			return err == nil && s.Breakers["app"] == want, err
		}
	}

	for range 3 {
		if err := readHeadAndClose(ctx, st.GatewayAddr, "/big"); err != nil {
			return err
		}
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "in-flight back to 0 after 3 aborted downloads", idle); err != nil {
		return err
	}
	t.Logf("3 aborted downloads: in-flight back to 0")

	if r := st.Get("/fail"); r.Code != http.StatusBadGateway {
		return fmt.Errorf("GET /fail: %v, want 502", r)
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "the breaker to go half-open", breaker("half-open")); err != nil {
		return err
	}
	if err := readHeadAndClose(ctx, st.GatewayAddr, "/big"); err != nil {
		return fmt.Errorf("the half-open probe: %w", err)
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "in-flight back to 0 after the aborted probe", idle); err != nil {
		return err
	}
	if r := st.Get("/"); !r.OK("c2") {
		return fmt.Errorf("after the aborted probe GET / got %v, want 200 from c2", r)
	}
	if err := harness.WaitFor(ctx, 10*time.Second, "the breaker to close", breaker("closed")); err != nil {
		return err
	}
	t.Logf("aborted half-open probe: the next request probed (200) and closed the breaker")
	return nil
}
