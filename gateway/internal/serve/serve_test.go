package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/lkg"
	"github.com/gitgate/gitgate/schemas"
)

// upstream answers its name in the body.
func upstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// allTo is a config whose route "all" sends every request to upstream
// "app", whose one target is target.
func allTo(target string) schemas.Config {
	return schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{target}}},
		Routes: map[string]schemas.Route{"all": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}},
	}
}

// bundle routes every request to target; up names the route's upstream
// ("app" is the one defined).
func bundle(t *testing.T, version, target, up string) *schemas.Bundle {
	t.Helper()
	cfg := allTo(target)
	r := cfg.Routes["all"]
	r.Backends = []schemas.Backend{{Upstream: up, Weight: 100}}
	cfg.Routes["all"] = r
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle(version, schemas.Source{Commit: version}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type gateway struct {
	data    string // base URL of the data plane
	observe string // base URL of the observe address, if any
	sock    string
	state   string
	admin   *client.Client
	stop    context.CancelFunc
	done    chan error
}

// http1Env names the HTTP/1.1 server every test of this package runs
// over (Config.HTTP1Server); unset, the default. .ci/run runs the package
// once per server.
const http1Env = "GITGATE_TEST_HTTP1_SERVER"

// testHTTP1 is the HTTP/1.1 server the package's tests run over.
func testHTTP1() string {
	if s := os.Getenv(http1Env); s != "" {
		return s
	}
	return DefaultHTTP1Server
}

// startGateway runs Run in-process until the test ends.
func startGateway(t testing.TB, state string, tweak func(*Config)) *gateway {
	t.Helper()
	dir, err := os.MkdirTemp("", "ggs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	g := &gateway{sock: filepath.Join(dir, "admin.sock"), state: state, done: make(chan error, 1)}
	type addrs struct{ data, observe net.Addr }
	listening := make(chan addrs, 1)
	cfg := Config{
		Listen: "127.0.0.1:0", AdminSocket: g.sock, StateDir: state, Watch: true,
		ShutdownTimeout: 5 * time.Second,
		OnListening:     func(d, o net.Addr) { listening <- addrs{d, o} },
	}
	cfg.HTTP1Server = testHTTP1()
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	logger := zerolog.New(zerolog.NewTestWriter(t))
	switch t.(type) {
	case *testing.B, *testing.F:
		// A fuzz target may not log through its F once fuzzing.
		logger = zerolog.Nop()
	}
	go func() { g.done <- Run(ctx, cfg, logger) }()
	select {
	case a := <-listening:
		g.data = "http://" + a.data.String()
		if a.observe != nil {
			g.observe = "http://" + a.observe.String()
		}
	case err := <-g.done:
		cancel()
		g.done <- err
		return g
	}
	g.admin = client.New(g.sock)
	t.Cleanup(func() {
		g.admin.Close()
		if err := g.shutdown(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return g
}

func (g *gateway) shutdown() error {
	g.stop()
	err := <-g.done
	g.done <- nil
	return err
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunServesLastKnownGoodThenAgentPushes(t *testing.T) {
	t.Parallel()
	a, b := upstream(t, "alpha"), upstream(t, "beta")
	state := t.TempDir()
	store, err := lkg.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(bundle(t, "v1", a.URL, "app")); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, state, func(c *Config) { c.ObserveAddr = "127.0.0.1:0" })
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	// Served from the last-known-good before any agent pushed.
	if code, body := fetch(t, g.data+"/x"); code != 200 || body != "alpha" {
		t.Fatalf("before any push: %d %q, want 200 alpha", code, body)
	}
	ctx := context.Background()
	st, err := g.admin.Status(ctx)
	if err != nil || !st.Ready || st.Version != "v1" || st.Routes != 1 || len(st.Upstreams["app"]) != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if _, err := g.admin.Put(ctx, bundle(t, "v2", b.URL, "app"), "v1"); err != nil {
		t.Fatal(err)
	}
	if code, body := fetch(t, g.data+"/x"); code != 200 || body != "beta" {
		t.Fatalf("after push: %d %q, want 200 beta", code, body)
	}
	saved, err := store.Load()
	if err != nil || saved.Version != "v2" {
		t.Fatalf("last-known-good after push: %v, %v", saved, err)
	}
	// A bundle that fails compile is refused and changes nothing.
	_, err = g.admin.Put(ctx, bundle(t, "v3", b.URL, "missing"), "")
	var re *client.RejectedError
	if !errors.As(err, &re) || len(re.Diagnostics) == 0 {
		t.Fatalf("bad bundle: %v, want *RejectedError with diagnostics", err)
	}
	if code, body := fetch(t, g.data+"/x"); code != 200 || body != "beta" {
		t.Fatalf("after refused push: %d %q, want 200 beta", code, body)
	}
	// The observe address is read-only and shows the same state.
	obs := client.NewURL(g.observe)
	defer obs.Close()
	if st, err := obs.Status(ctx); err != nil || st.Version != "v2" || st.LastRejected == nil {
		t.Fatalf("observe status %+v, %v", st, err)
	}
	if _, err := obs.Put(ctx, bundle(t, "v4", a.URL, "app"), ""); err == nil {
		t.Fatal("PUT accepted on the observe address")
	}
	if code, body := fetch(t, g.observe+"/metrics"); code != 200 || !strings.Contains(body, "gitgate_gateway_build_info") {
		t.Fatalf("metrics: %d", code)
	}

	if err := g.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Lstat(g.sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin socket left behind after shutdown: %v", err)
	}
}

func TestRunIgnoresUnusableLastKnownGood(t *testing.T) {
	t.Parallel()
	up := upstream(t, "alpha")
	tests := []struct {
		name         string
		write        func(t *testing.T, path string)
		wantRejected bool
	}{
		{name: "truncated file", wantRejected: true, write: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(`{"apiVersion":"gitgate.dev/v1","vers`), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "config the engine refuses", wantRejected: true, write: func(t *testing.T, path string) {
			s, err := lkg.Open(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(bundle(t, "v1", up.URL, "missing")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state := t.TempDir()
			tt.write(t, filepath.Join(state, lkg.FileName))
			g := startGateway(t, state, nil)
			if g.admin == nil {
				t.Fatalf("Run failed: %v", <-g.done)
			}
			ctx := context.Background()
			if err := g.admin.Ready(ctx); !errors.Is(err, client.ErrNotReady) {
				t.Fatalf("Ready: %v, want ErrNotReady", err)
			}
			if code, _ := fetch(t, g.data+"/"); code != http.StatusServiceUnavailable {
				t.Fatalf("data plane without config: %d, want 503", code)
			}
			st, err := g.admin.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (st.LastRejected != nil) != tt.wantRejected {
				t.Fatalf("last rejected %+v", st.LastRejected)
			}
			aside, _ := filepath.Glob(filepath.Join(state, lkg.FileName+".corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("unusable file not moved aside: %v", aside)
			}
			if _, err := os.Stat(filepath.Join(state, lkg.FileName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("unusable file still in place: %v", err)
			}
			// The agent's push heals it.
			if _, err := g.admin.Put(ctx, bundle(t, "v2", up.URL, "app"), ""); err != nil {
				t.Fatal(err)
			}
			if code, body := fetch(t, g.data+"/"); code != 200 || body != "alpha" {
				t.Fatalf("after push: %d %q", code, body)
			}
		})
	}
}

func TestRunDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	defer slow.Close()
	g := startGateway(t, t.TempDir(), nil)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	if _, err := g.admin.Put(context.Background(), bundle(t, "v1", slow.URL, "app"), ""); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Post(g.data+"/slow", "text/plain", strings.NewReader("x"))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- g.shutdown() }()
	// Shutdown stops accepting while the request is in flight.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.data, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request during shutdown: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunRefusesNonSocketPath(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "ggs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "admin.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Config{Listen: "127.0.0.1:0", AdminSocket: path}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Run: %v, want a refusal naming the non-socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("non-socket file was touched")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "tls cert without key", cfg: Config{TLS: ListenerTLS{Cert: "c.pem"}}, want: "go together"},
		{name: "socket mode beyond 0777", cfg: Config{AdminSocketMode: 0o4777}, want: "beyond 0777"},
		{name: "observe key without cert", cfg: Config{ObserveAddr: "127.0.0.1:0", ObserveTLS: ListenerTLS{Key: "k.pem"}}, want: "--observe-tls-cert and --observe-tls-key go together"},
		{name: "client CA without TLS", cfg: Config{TLS: ListenerTLS{ClientCA: "ca.pem"}}, want: "--client-ca needs TLS"},
		{name: "observe TLS without observe address", cfg: Config{ObserveTLS: ListenerTLS{Dir: "/certs"}}, want: "need --observe-addr"},
		{name: "unknown client auth mode", cfg: Config{TLS: ListenerTLS{Dir: "/certs", ClientCA: "ca.pem", ClientAuth: "maybe"}}, want: "not required or optional"},
		{name: "client cert header not a header name", cfg: Config{ClientCertHeader: "X Client"}, want: "not a header name"},
		{name: "certificate directory without pairs", cfg: Config{TLS: ListenerTLS{Dir: "/nonexistent-gitgate-certs"}}, want: "data listener TLS"},
		{name: "negative shutdown delay", cfg: Config{ShutdownDelay: -time.Second}, want: "shutdown delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Run(context.Background(), tt.cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "cidrs and bare addresses", in: "10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32",
			want: []string{"10.0.0.0/8", "192.168.1.7/32", "::1/128", "2001:db8::/32"}},
		{name: "host bits masked", in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},
		{name: "garbage", in: "10.0.0.0/8,nope", wantErr: true},
		{name: "bad length", in: "10.0.0.0/33", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePrefixes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			var want []netip.Prefix
			for _, s := range tt.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
