package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"
	//lint:ignore SA1019 the attack needs a server that switches on "Upgrade: h2c", which only this package implements
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/gitgate/gitgate/schemas"
)

// The tests of this file send hostile bytes on raw connections to a real
// gateway (Run) in front of real upstreams, and check both the answer and
// exactly what the upstream received.

// seenRequest is one request as an upstream received it.
type seenRequest struct {
	method, path, proto string
	header              http.Header
}

// requestLog records what an upstream received.
type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, seenRequest{method: r.Method, path: r.URL.Path, proto: r.Proto, header: r.Header.Clone()})
}

func (l *requestLog) take() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

// capturingUpstream records every request and answers "up".
func capturingUpstream(t *testing.T) (*httptest.Server, *requestLog) {
	t.Helper()
	log := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "up")
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

// serveConfig starts a gateway and pushes cfg (defaults applied) to it;
// it returns the data plane's host:port.
func serveConfig(t *testing.T, cfg schemas.Config) string {
	t.Helper()
	return serveConfigWith(t, nil, cfg)
}

// serveConfigWith is serveConfig for a gateway whose Config tweak
// changes (nil: none).
func serveConfigWith(t testing.TB, tweak func(*Config), cfg schemas.Config) string {
	t.Helper()
	g := startGateway(t, "", tweak)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle("v1", schemas.Source{Commit: "v1"}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.admin.Put(context.Background(), b, ""); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(g.data, "http://")
}

// rawExchange writes raw on a new connection and reads one answer.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
	go func() { _, _ = io.WriteString(conn, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func sha256Key(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// cgiName is the name CGI, WSGI and PHP give a request header.
func cgiName(h string) string {
	return "HTTP_" + strings.ToUpper(strings.ReplaceAll(h, "-", "_"))
}

// TestUpgradeOnlyWhatTheRouteAllows puts a real h2c-capable upstream
// (x/net's h2c handler, which switches on "Upgrade: h2c" with an
// HTTP2-Settings header) behind a public route and an API-key route. A
// client asks the public route for h2c and, had it got its 101, would speak
// HTTP/2 through the tunnel for /priv without a key. The gateway must
// serve the request as plain HTTP/1.1 instead, and refuse upgrades to
// protocols the route does not allow.
func TestUpgradeOnlyWhatTheRouteAllows(t *testing.T) {
	t.Parallel()
	log := &requestLog{}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		_, _ = io.WriteString(w, "up "+r.URL.Path)
	})
	//lint:ignore SA1019 see the import: the upstream must accept an h2c upgrade
	h2cApp := h2c.NewHandler(app, &http2.Server{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A lenient upstream: it does not insist on HTTP2-Settings being
		// listed in Connection (a proxy rewrites Connection anyway).
		if r.Header.Get("Upgrade") == "h2c" {
			r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
		}
		h2cApp.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{
			"pub":  {Match: schemas.Match{Path: "/pub"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}},
			"noup": {Match: schemas.Match{Path: "/noup"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}, Upgrades: []string{}},
			"priv": {Match: schemas.Match{Path: "/priv"}, Backends: []schemas.Backend{{Upstream: "app", Weight: 100}}, Policies: []string{"key"}},
		},
		Policies: map[string]schemas.Policy{"key": {APIKey: &schemas.APIKey{Keys: map[string]string{"acme": sha256Key("k")}}}},
	}
	addr := serveConfig(t, cfg)

	tests := []struct {
		name       string
		path       string
		upgrade    string
		wantStatus int
		wantSeen   []string // paths the upstream served, in order
	}{
		{name: "h2c is served as HTTP/1.1", path: "/pub", upgrade: "h2c", wantStatus: http.StatusOK, wantSeen: []string{"/pub"}},
		{name: "h2c in capitals too", path: "/pub", upgrade: "H2C", wantStatus: http.StatusOK, wantSeen: []string{"/pub"}},
		{name: "a protocol the route does not list", path: "/pub", upgrade: "smuggle", wantStatus: http.StatusForbidden},
		{name: "websocket on a route allowing none", path: "/noup", upgrade: "websocket", wantStatus: http.StatusForbidden},
	}
	for _, tc := range tests {
		// Not parallel: each case reads what the shared upstream saw.
		t.Run(tc.name, func(t *testing.T) {
			log.take()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
			_, err = io.WriteString(conn, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"+
				"Upgrade: "+tc.upgrade+"\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// The tunnel is open: show what it lets through.
				status := h2cGet(t, conn, br, "/priv")
				t.Fatalf("got 101 for Upgrade: %s; through the tunnel /priv without a key answered %s; upstream saw %v",
					tc.upgrade, status, paths(log.take()))
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			seen := log.take()
			if got := paths(seen); strings.Join(got, "|") != strings.Join(tc.wantSeen, "|") {
				t.Fatalf("upstream served %q, want %q", got, tc.wantSeen)
			}
			for _, s := range seen {
				if s.header.Get("Upgrade") != "" || s.header.Get("Http2-Settings") != "" {
					t.Errorf("upstream got Upgrade %q, HTTP2-Settings %q", s.header.Get("Upgrade"), s.header.Get("Http2-Settings"))
				}
			}
		})
	}
	t.Run("websocket still upgrades", func(t *testing.T) {
		ws := echoUpgrades(t)
		cfg := schemas.Config{
			Upstreams: map[string]schemas.Upstream{"ws": {Targets: []string{ws.URL}}},
			Routes:    map[string]schemas.Route{"ws": {Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: "ws", Weight: 100}}}},
		}
		u := dialUpgrade(t, serveConfig(t, cfg), "/chat")
		u.echo(t, "second")
		u.close()
	})
}

// h2cGet speaks HTTP/2 on a connection the upstream switched to h2c and
// sends GET path on stream 3; it returns the :status answered ("" when the
// connection ended first).
func h2cGet(t *testing.T, conn net.Conn, br *bufio.Reader, path string) string {
	t.Helper()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return ""
	}
	fr := http2.NewFramer(conn, br)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return ""
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			if f.StreamID != 3 {
				continue
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					return hf.Value
				}
			}
		}
	}
}

func paths(reqs []seenRequest) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.path)
	}
	return out
}

// TestIdentityHeadersAreTheGatewaysOwn checks that the headers the gateway
// sets from authentication (consumerHeader, claimsToHeaders) and from the
// connection (X-Forwarded-For) reach the upstream with the gateway's value
// only: a Connection header naming them cannot drop them, and no client
// spelling that CGI, WSGI or PHP read under the same name (X_Consumer is
// HTTP_X_CONSUMER) gets through beside them.
func TestIdentityHeadersAreTheGatewaysOwn(t *testing.T) {
	t.Parallel()
	up, log := capturingUpstream(t)
	secret := filepath.Join(t.TempDir(), "jwt.key")
	const jwtKey = "identity-test-secret-of-32-bytes!!"
	if err := os.WriteFile(secret, []byte(jwtKey), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "user-7", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(jwtKey))
	if err != nil {
		t.Fatal(err)
	}
	backends := []schemas.Backend{{Upstream: "app", Weight: 100}}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{
			"key": {Match: schemas.Match{Path: "/key"}, Backends: backends, Policies: []string{"key"}},
			"jwt": {Match: schemas.Match{Path: "/jwt"}, Backends: backends, Policies: []string{"jwt"}},
		},
		Policies: map[string]schemas.Policy{
			"key": {APIKey: &schemas.APIKey{Keys: map[string]string{"acme": sha256Key("k")}, ConsumerHeader: "X-Consumer"}},
			"jwt": {JWT: &schemas.JWT{Algorithms: []string{"HS256"}, Secret: &schemas.SecretRef{File: secret},
				ClaimsToHeaders: map[string]string{"sub": "X-User-Id"}}},
		},
	}
	addr := serveConfig(t, cfg)
	const keyReq = "GET /key HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\r\n"
	jwtReq := "GET /jwt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n"

	tests := []struct {
		name   string
		raw    string
		header string // the gateway's header
		want   string // its only value upstream
	}{
		{name: "connection-listed consumer header", raw: keyReq + "Connection: X-Consumer\r\n\r\n", header: "X-Consumer", want: "acme"},
		{name: "connection-listed consumer header among others", raw: keyReq + "Connection: keep-alive, x-consumer\r\n\r\n", header: "X-Consumer", want: "acme"},
		{name: "connection-listed claim header", raw: jwtReq + "Connection: X-User-Id\r\n\r\n", header: "X-User-Id", want: "user-7"},
		{name: "underscore spelling of the consumer header", raw: keyReq + "X_Consumer: admin\r\n\r\n", header: "X-Consumer", want: "acme"},
		{name: "lower-case underscore spelling", raw: keyReq + "x_consumer: admin\r\n\r\n", header: "X-Consumer", want: "acme"},
		{name: "underscore spelling of the claim header", raw: jwtReq + "X_User_Id: admin\r\n\r\n", header: "X-User-Id", want: "user-7"},
		{name: "mixed spelling of the claim header", raw: jwtReq + "X-User_Id: admin\r\n\r\n", header: "X-User-Id", want: "user-7"},
		{name: "underscore spelling of x-forwarded-for", raw: keyReq + "X_Forwarded_For: 6.6.6.6\r\n\r\n", header: "X-Forwarded-For", want: "127.0.0.1"},
		{name: "underscore spelling of x-real-ip", raw: keyReq + "X_Real_IP: 6.6.6.6\r\n\r\n", header: "X-Real-Ip", want: ""},
	}
	for _, tc := range tests {
		// Not parallel: each case reads what the shared upstream saw.
		t.Run(tc.name, func(t *testing.T) {
			log.take()
			resp, body := rawExchange(t, addr, tc.raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", resp.StatusCode, body)
			}
			seen := log.take()
			if len(seen) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(seen))
			}
			var got []string
			for k, v := range seen[0].header {
				if cgiName(k) == cgiName(tc.header) {
					got = append(got, k+": "+strings.Join(v, ","))
				}
			}
			want := []string{}
			if tc.want != "" {
				want = []string{tc.header + ": " + tc.want}
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("upstream got %q under %s, want %q", got, cgiName(tc.header), want)
			}
		})
	}
}

// TestRequestScreening sends requests the gateway must refuse before any
// routing, or forward only cleaned, and checks what the upstream saw.
func TestRequestScreening(t *testing.T) {
	t.Parallel()
	up, log := capturingUpstream(t)
	backends := []schemas.Backend{{Upstream: "app", Weight: 100}}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{
			"all":    {Match: schemas.Match{Path: "/"}, Backends: backends},
			"params": {Match: schemas.Match{Path: "/params"}, Backends: backends, AllowPathParameters: true},
			"strip": {Match: schemas.Match{Path: "/s"}, Backends: backends,
				Rewrite: &schemas.Rewrite{StripPrefix: "/s/api"}},
			"regex": {Match: schemas.Match{Path: "/pub"}, Backends: backends,
				Rewrite: &schemas.Rewrite{Regex: &schemas.RegexRewrite{Pattern: "^/pub/([^/]*)-(.*)$", Replacement: "/pub/$1/$2"}}},
		},
	}
	addr := serveConfig(t, cfg)
	get := func(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n" }

	tests := []struct {
		name       string
		raw        string
		wantStatus int
		wantAllow  string   // Allow header of a 405
		wantSeen   []string // paths the upstream got, in order
		noHeaders  []string // headers the upstream must not get
		wantBody   string   // a substring of the answer's body
		anySeen    bool     // the upstream may or may not have seen the request
	}{
		{name: "CONNECT", raw: "CONNECT upstream.internal:443 HTTP/1.1\r\nHost: upstream.internal:443\r\n\r\n",
			wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "TRACE", raw: "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n",
			wantStatus: http.StatusMethodNotAllowed, wantAllow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "dot-dot path parameter", raw: get("/pub/..;/priv"), wantStatus: http.StatusBadRequest, wantBody: "path"},
		{name: "path parameter", raw: get("/a;jsessionid=1"), wantStatus: http.StatusBadRequest, wantBody: "path"},
		{name: "encoded semicolon", raw: get("/a%3bjsessionid=1"), wantStatus: http.StatusBadRequest, wantBody: "path"},
		{name: "path parameter on a route allowing them", raw: get("/params/a;v=1"), wantStatus: http.StatusOK, wantSeen: []string{"/params/a;v=1"}},
		{name: "dot-dot parameter on a route allowing them", raw: get("/params/..;/x"), wantStatus: http.StatusBadRequest},
		{name: "dot parameter on a route allowing them", raw: get("/params/.;x/y"), wantStatus: http.StatusBadRequest},
		{name: "double-encoded dots", raw: get("/pub/%252e%252e/priv"), wantStatus: http.StatusBadRequest, wantBody: "path"},
		{name: "double-encoded capital dots", raw: get("/pub/%252E%252E/priv"), wantStatus: http.StatusBadRequest},
		{name: "encoded dots are normalized and routed", raw: get("/pub/%2e%2e/priv"), wantStatus: http.StatusOK, wantSeen: []string{"/priv"}},
		{name: "encoded capital dots are normalized and routed", raw: get("/pub/%2E%2E/priv"), wantStatus: http.StatusOK, wantSeen: []string{"/priv"}},
		{name: "encoded dots with a parameter", raw: get("/pub/%2e%2e;/priv"), wantStatus: http.StatusBadRequest},
		{name: "one encoded dot beside a plain one", raw: get("/pub/.%2e;/priv"), wantStatus: http.StatusBadRequest},
		{name: "encoded dots inside a segment", raw: get("/pub/%2e%2ex"), wantStatus: http.StatusBadRequest, wantBody: "%2e"},
		{name: "encoded dot at the end", raw: get("/pub/x%2E"), wantStatus: http.StatusBadRequest, wantBody: "%2e"},
		{name: "other escapes pass", raw: get("/a%20b"), wantStatus: http.StatusOK, wantSeen: []string{"/a b"}},
		{name: "forwarding headers of an untrusted peer", raw: "GET /h HTTP/1.1\r\nHost: x\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Port: 1\r\n" +
			"X-Forwarded-Prefix: /admin\r\nX-Original-URL: /priv\r\nX-Rewrite-URL: /priv\r\n\r\n",
			wantStatus: http.StatusOK, wantSeen: []string{"/h"},
			noHeaders: []string{"X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Original-Url", "X-Rewrite-Url"}},
		{name: "stripPrefix leaves a longer segment alone", raw: get("/s/apiary"), wantStatus: http.StatusOK, wantSeen: []string{"/s/apiary"}},
		{name: "stripPrefix strips its segments", raw: get("/s/api/x"), wantStatus: http.StatusOK, wantSeen: []string{"/x"}},
		{name: "stripPrefix of the whole path", raw: get("/s/api"), wantStatus: http.StatusOK, wantSeen: []string{"/"}},
		{name: "regex rewrite", raw: get("/pub/a-b"), wantStatus: http.StatusOK, wantSeen: []string{"/pub/a/b"}},
		{name: "regex rewrite that climbs out", raw: get("/pub/..-priv"), wantStatus: http.StatusBadRequest, wantBody: "rewrit"},
		{name: "regex rewrite with a dot segment", raw: get("/pub/.-x"), wantStatus: http.StatusOK, wantSeen: []string{"/pub/x"}},
		{name: "bad chunk size", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
			wantStatus: http.StatusBadRequest, anySeen: true},
	}
	for _, tc := range tests {
		// Not parallel: each case reads what the shared upstream saw.
		t.Run(tc.name, func(t *testing.T) {
			log.take()
			resp, body := rawExchange(t, addr, tc.raw)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if got := resp.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q does not say %q", body, tc.wantBody)
			}
			seen := log.take()
			if !tc.anySeen {
				if got := paths(seen); strings.Join(got, "|") != strings.Join(tc.wantSeen, "|") {
					t.Fatalf("upstream got %q, want %q", got, tc.wantSeen)
				}
			}
			for _, s := range seen {
				for _, h := range tc.noHeaders {
					if v, ok := s.header[h]; ok {
						t.Errorf("upstream got %s: %q", h, v)
					}
				}
			}
		})
	}
}

// TestSwitchingProtocolsAnswerLosesHopByHopHeaders has an upstream answer
// a WebSocket upgrade with hop-by-hop headers of its own; the client must
// get Connection: Upgrade and Upgrade, and none of the others.
func TestSwitchingProtocolsAnswerLosesHopByHopHeaders(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal\r\n" +
			"X-Internal: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic realm=\"inside\"\r\nTrailer: X-T\r\n" +
			"Proxy-Connection: keep-alive\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
		_ = brw.Flush()
		_, _ = brw.ReadString('\n') // until the client goes
	}))
	t.Cleanup(func() { up.Close(); wg.Wait() })
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"ws": {Targets: []string{up.URL}}},
		Routes:    map[string]schemas.Route{"ws": {Match: schemas.Match{Path: "/"}, Backends: []schemas.Backend{{Upstream: "ws", Weight: 100}}}},
	}
	addr := serveConfig(t, cfg)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard
	if _, err := io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, h := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Proxy-Connection"} {
		if v, ok := resp.Header[h]; ok {
			t.Errorf("client got hop-by-hop %s: %q", h, v)
		}
	}
	want := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-Websocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}
	for h, v := range want {
		if got := strings.Join(resp.Header[h], ","); got != v {
			t.Errorf("%s: %q, want %q", h, got, v)
		}
	}
}
