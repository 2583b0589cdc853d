package runtime

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

var versionSeq atomic.Int64

// bundleOf builds a verified bundle of cfg.
func bundleOf(t testing.TB, cfg schemas.Config) *schemas.Bundle {
	t.Helper()
	b, err := schemas.NewBundle(fmt.Sprintf("v%d", versionSeq.Add(1)), schemas.Source{}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newEngine returns an engine closed at the end of the test.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e := New(opts)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func mustApply(t testing.TB, e *Engine, cfg schemas.Config) {
	t.Helper()
	if err := e.Apply(bundleOf(t, cfg)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// named is an upstream server that answers its name in X-Upstream and the
// body.
func named(t testing.TB, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Seen-Path", r.URL.Path)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// front serves e on a real listener.
func front(t testing.TB, e *Engine) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func route(path string, backends ...schemas.Backend) schemas.Route {
	return schemas.Route{Match: schemas.Match{Path: path}, Backends: backends}
}

func to(up string, w int) schemas.Backend { return schemas.Backend{Upstream: up, Weight: w} }

func ups(targets ...string) schemas.Upstream { return schemas.Upstream{Targets: targets} }

// get does a GET and returns status, body and the X-Upstream header.
func get(t testing.TB, c *http.Client, url string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Upstream")
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func invalid(t testing.TB, err error) *schemas.InvalidError {
	t.Helper()
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v, want *schemas.InvalidError", err)
	}
	return inv
}

// refusedURL is an http:// address that refuses connections for the whole
// test: its port is bound but never listened on, so no other test's server
// can take it over (a closed httptest server's port can be reused at once).
func refusedURL(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
