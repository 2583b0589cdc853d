package runtime

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// rawGet sends path exactly as given (no client-side cleaning) and returns
// the status, the X-Upstream header and the path the upstream saw.
func rawGet(t *testing.T, addr, path string) (int, string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header.Get("X-Upstream"), res.Header.Get("X-Seen-Path")
}

// TestPathNormalizedBeforeRouting checks that the path is normalized before
// the route lookup and that the upstream receives the normalized path, so a
// /public route cannot be used to reach /admin on its upstream.
func TestPathNormalizedBeforeRouting(t *testing.T) {
	t.Parallel()
	pub, adm := named(t, "public"), named(t, "admin")
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"public": ups(pub.URL), "admin": ups(adm.URL)},
		Routes: map[string]schemas.Route{
			"public": route("/public", to("public", 100)),
			"admin":  route("/admin", to("admin", 100)),
			"exact":  {Match: schemas.Match{Path: "/status", PathType: schemas.PathExact}, Backends: []schemas.Backend{to("public", 100)}},
		},
	})
	addr := strings.TrimPrefix(front(t, e).URL, "http://")
	cases := []struct {
		name, path   string
		code         int
		upstream     string
		upstreamPath string
	}{
		{"dot dot leaves the public prefix", "/public/../admin", 200, "admin", "/admin"},
		{"encoded dot dot", "/public/%2e%2e/admin/x", 200, "admin", "/admin/x"},
		{"dot dot above root", "/../../public/x", 200, "public", "/public/x"},
		{"dot segment", "/public/./x", 200, "public", "/public/x"},
		{"merged slashes", "//public//x", 200, "public", "/public/x"},
		{"exact after cleaning", "/public/../status", 200, "public", "/status"},
		{"trailing slash kept", "/public/x/", 200, "public", "/public/x/"},
		{"encoded slash refused", "/public%2F..%2Fadmin", 400, "", ""},
		{"encoded backslash refused", "/public/..%5Cadmin", 400, "", ""},
		{"raw backslash refused", "/public/..\\admin", 400, "", ""},
		{"encoded nul refused", "/public/a%00b", 400, "", ""},
		{"bad escape refused", "/public/a%zz", 400, "", ""},
		{"clean path unchanged", "/public/a%20b", 200, "public", "/public/a b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, up, seen := rawGet(t, addr, tc.path)
			if code != tc.code || up != tc.upstream || seen != tc.upstreamPath {
				t.Fatalf("GET %s: %d from %q saw %q; want %d from %q saw %q", tc.path, code, up, seen, tc.code, tc.upstream, tc.upstreamPath)
			}
		})
	}
}
