package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios,
		scenario{
			name: "rx-redirect-and-direct-responses",
			criterion: "a commit adds routes without backends: curl asking the plain-HTTP gateway for host www.example.test " +
				"gets a 308 to https://127.0.0.1:PORT with path and query kept, and following it (-L, checking the " +
				"certificate) reaches the HTTPS site; /robots.txt is answered by the gateway with its body and " +
				"Cache-Control; /shop is a 503 maintenance page with Retry-After, but only past its API-key policy " +
				"(401 without the key); each answer is counted under its route in the gateway's status with upstream " +
				"(redirect) or (direct)",
			run: redirectAndDirect,
		},
		scenario{
			name: "rx-compression-negotiated",
			criterion: "a route with compress: {} in front of an upstream serving 64 KiB of CSS: curl --compressed " +
				"(Accept-Encoding: deflate, gzip, br, zstd) gets zstd, with Accept-Encoding: gzip gets gzip, both decoded " +
				"by curl to the upstream's bytes with Vary: Accept-Encoding and no more than a tenth of the size on the " +
				"wire; without Accept-Encoding, and for an already gzip-encoded upstream response, the bytes pass as " +
				"they are",
			run: compressionNegotiated,
		},
	)
}

// ensureCurl returns curl's path, installing Debian's package when it is
// missing (root only; otherwise the scenario is skipped).
func ensureCurl(ctx context.Context, t *T) (string, error) {
	return ensureTool(ctx, t, debianTool{name: "curl", pkg: "curl"})
}

// curlResult is what one curl run saw: the headers of the last response
// (lower-case names) and its body.
type curlResult struct {
	status  string
	headers map[string]string
	body    string
	wire    string // size_download: the body bytes on the wire
}

// runCurl runs curl with args against the gateway and returns the last
// response's status line, headers and body.
func runCurl(ctx context.Context, curl, dir string, args ...string) (curlResult, error) {
	hdrFile := filepath.Join(dir, "curl-headers.txt")
	all := append([]string{"-sS", "--max-time", "10", "-D", hdrFile, "-w", wireMark + "%{size_download}"}, args...)
	out, err := exec.CommandContext(ctx, curl, all...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return curlResult{}, fmt.Errorf("curl %s: %w: %s", strings.Join(args, " "), err, stderr)
	}
	raw, err := os.ReadFile(hdrFile)
	if err != nil {
		return curlResult{}, fmt.Errorf("reading curl's headers: %w", err)
	}
	// With -L the file holds every response: keep the last block.
	blocks := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(raw), "\r\n", "\n")), "\n\n")
	lines := strings.Split(blocks[len(blocks)-1], "\n")
	res := curlResult{status: lines[0], headers: map[string]string{}}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			res.headers[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	// -w appends the wire size after the body.
	s := string(out)
	i := strings.LastIndex(s, wireMark)
	if i < 0 {
		return curlResult{}, fmt.Errorf("curl %s: no %s in its output", strings.Join(args, " "), wireMark)
	}
	res.body, res.wire = s[:i], s[i+len(wireMark):]
	return res, nil
}

// wireMark separates the body from curl's -w report.
const wireMark = "\n@@wire-bytes="

func redirectAndDirect(ctx context.Context, t *T) error {
	curl, err := ensureCurl(ctx, t)
	if err != nil {
		return err
	}
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	// The HTTPS site the plain-HTTP gateway sends clients to.
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure "+r.URL.RequestURI())
	}))
	t.Cleanup(site.Close)
	caFile := filepath.Join(st.Dir, "site-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: site.Certificate().Raw}), 0o600); err != nil {
		return fmt.Errorf("writing the site's certificate: %w", err)
	}
	_, sitePort, _ := strings.Cut(strings.TrimPrefix(site.URL, "https://"), ":")
	sum := sha256.Sum256([]byte("e2e-key"))
	cfg := harness.ConfigYAML(t.Upstream(), "c2", nil) + fmt.Sprintf(`  insecure:
    match:
      hosts: [www.example.test]
      path: /
    redirect:
      scheme: https
      host: "127.0.0.1"
      port: %s
      status: 308
  robots:
    match:
      path: /robots.txt
      pathType: exact
    directResponse:
      body: "User-agent: *\nDisallow: /private/\n"
      headers:
        Cache-Control: max-age=3600
  maintenance:
    match:
      path: /shop
    policies: [key]
    directResponse:
      status: 503
      contentType: text/html; charset=utf-8
      body: "<h1>Back soon</h1>\n"
      headers:
        Retry-After: "120"
policies:
  key:
    apiKey:
      keys:
        e2e: "sha256:%s"
`, sitePort, hex.EncodeToString(sum[:]))
	if _, err := t.pushServed(ctx, st, cfg, "c2", "c2"); err != nil {
		return err
	}
	gw := "http://" + st.GatewayAddr

	r, err := runCurl(ctx, curl, st.Dir, "-H", "Host: www.example.test", gw+"/account/login?next=%2Fhome&x=1")
	if err != nil {
		return err
	}
	wantLoc := "https://127.0.0.1:" + sitePort + "/account/login?next=%2Fhome&x=1"
	if !strings.Contains(r.status, " 308") || r.headers["location"] != wantLoc {
		return fmt.Errorf("redirect: %s, Location %q; want 308 to %s", r.status, r.headers["location"], wantLoc)
	}
	r, err = runCurl(ctx, curl, st.Dir, "-L", "--cacert", caFile, "-H", "Host: www.example.test", gw+"/account/login?next=%2Fhome&x=1")
	if err != nil {
		return err
	}
	if !strings.Contains(r.status, " 200") || r.body != "secure /account/login?next=%2Fhome&x=1" {
		return fmt.Errorf("following the redirect: %s %q", r.status, r.body)
	}
	// Another host is not redirected: the main route serves it.
	if r := st.Get("/account/login"); !r.OK("c2") {
		return fmt.Errorf("the gateway's own host: %s, want c2", r)
	}

	r, err = runCurl(ctx, curl, st.Dir, gw+"/robots.txt")
	if err != nil {
		return err
	}
	if !strings.Contains(r.status, " 200") || r.body != "User-agent: *\nDisallow: /private/\n" ||
		r.headers["cache-control"] != "max-age=3600" || r.headers["content-type"] != "text/plain; charset=utf-8" {
		return fmt.Errorf("robots.txt: %s %v %q", r.status, r.headers, r.body)
	}

	r, err = runCurl(ctx, curl, st.Dir, gw+"/shop/cart")
	if err != nil {
		return err
	}
	if !strings.Contains(r.status, " 401") {
		return fmt.Errorf("maintenance page without the key: %s, want the policy's 401", r.status)
	}
	r, err = runCurl(ctx, curl, st.Dir, "-H", "X-API-Key: e2e-key", gw+"/shop/cart")
	if err != nil {
		return err
	}
	if !strings.Contains(r.status, " 503") || r.body != "<h1>Back soon</h1>\n" || r.headers["retry-after"] != "120" {
		return fmt.Errorf("maintenance page: %s %v %q", r.status, r.headers, r.body)
	}

	s, err := st.Admin.Status(ctx)
	if err != nil {
		return err
	}
	routes := s.Traffic.Current.Routes
	for _, c := range []struct {
		route, upstream string
		n               uint64
	}{{"insecure", "(redirect)", 2}, {"robots", "(direct)", 1}, {"maintenance", "(direct)", 1}} {
		if got := routes[c.route].Backends[c.upstream].Requests; got != c.n {
			return fmt.Errorf("route %s: %d requests counted under %s, want %d (%+v)", c.route, got, c.upstream, c.n, routes[c.route])
		}
	}
	t.Logf("308 to %s followed by curl; robots.txt and a maintenance page behind its policy answered by the gateway", wantLoc)
	return nil
}

func compressionNegotiated(ctx context.Context, t *T) error {
	curl, err := ensureCurl(ctx, t)
	if err != nil {
		return err
	}
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	css := strings.Repeat(".button { color: #333; background: linear-gradient(#fff, #eee); }\n", 1000)[:64<<10]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/assets/pre.gz" {
			w.Header().Set("Content-Type", "text/css")
			w.Header().Set("Content-Encoding", "gzip") // opaque bytes: must pass untouched
			_, _ = io.WriteString(w, "not really gzip")
			return
		}
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("ETag", `"css-1"`)
		_, _ = io.WriteString(w, css)
	}))
	t.Cleanup(up.Close)
	// The upstream goes under "upstreams:", which ConfigYAML opens first.
	cfg := strings.Replace(harness.ConfigYAML(t.Upstream(), "c2", nil), "upstreams:\n", fmt.Sprintf("upstreams:\n  assets:\n    targets: [%q]\n", up.URL), 1) + `  assets:
    match:
      path: /assets
    backends:
      - upstream: assets
        weight: 100
    compress: {}
`
	if _, err := t.pushServed(ctx, st, cfg, "c2", "c2"); err != nil {
		return err
	}
	url := "http://" + st.GatewayAddr + "/assets/site.css"
	for _, c := range []struct {
		name string
		args []string
		enc  string
	}{
		{"curl --compressed", []string{"--compressed"}, "zstd"},
		{"Accept-Encoding: gzip", []string{"--compressed", "-H", "Accept-Encoding: gzip"}, "gzip"},
		{"no Accept-Encoding", nil, ""},
	} {
		r, err := runCurl(ctx, curl, st.Dir, append(c.args, url)...)
		if err != nil {
			return err
		}
		if r.headers["content-encoding"] != c.enc || r.body != css || r.headers["vary"] != "Accept-Encoding" {
			return fmt.Errorf("%s: Content-Encoding %q (want %q), Vary %q, body of %d bytes (want the upstream's %d)",
				c.name, r.headers["content-encoding"], c.enc, r.headers["vary"], len(r.body), len(css))
		}
		if c.enc != "" {
			if n, err := strconv.Atoi(r.wire); err != nil || n > len(css)/10 {
				return fmt.Errorf("%s: %q bytes on the wire for %d, want at most a tenth", c.name, r.wire, len(css))
			}
			if r.headers["etag"] != `W/"css-1"` {
				return fmt.Errorf("%s: ETag %q, want the weak W/\"css-1\"", c.name, r.headers["etag"])
			}
		}
		t.Logf("%s: %q, %s bytes on the wire for %d", c.name, c.enc, r.wire, len(css))
	}
	r, err := runCurl(ctx, curl, st.Dir, "-H", "Accept-Encoding: zstd, gzip", "http://"+st.GatewayAddr+"/assets/pre.gz")
	if err != nil {
		return err
	}
	if r.headers["content-encoding"] != "gzip" || r.body != "not really gzip" {
		return fmt.Errorf("an encoded upstream response was changed: %v %q", r.headers, r.body)
	}
	return nil
}
