package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/gateway/internal/serve"
	"github.com/gitgate/gitgate/schemas"
)

func TestRunFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "version command", args: []string{"version"}, wantOut: "gateway (devel) ("},
		{name: "version flag", args: []string{"--version"}, wantOut: "gateway (devel) ("},
		{name: "version flag after run", args: []string{"run", "--version"}, wantOut: "gateway (devel) ("},
		{name: "help", args: []string{"--help"}, wantOut: "Usage:\n  gateway [flags]"},
		{name: "single-dash long flag", args: []string{"-listen", ":0"}, wantCode: 2, wantErr: "long flags take two dashes: --listen"},
		{name: "bad socket mode", args: []string{"--admin-socket-mode", "rw"}, wantCode: 2, wantErr: "octal mode"},
		{name: "socket mode too wide", args: []string{"--admin-socket-mode", "1777"}, wantCode: 2, wantErr: "octal mode"},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "10.0.0.0/8,x"}, wantCode: 2, wantErr: "trusted-proxies"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantCode: 2, wantErr: "log-level"},
		{name: "unknown flag", args: []string{"--nope"}, wantCode: 2, wantErr: "unknown flag: --nope"},
		{name: "bad client auth mode", args: []string{"--client-auth", "maybe"}, wantCode: 2, wantErr: "--client-auth \"maybe\" is not required or optional"},
		{name: "stray argument", args: []string{"run", "extra"}, wantCode: 2, wantErr: "unexpected argument"},
		{name: "OTLP endpoint without scheme", args: []string{"--otlp-endpoint", "collector:4318"}, wantCode: 2, wantErr: "--otlp-endpoint: OTLP endpoint \"collector:4318\" is not an http:// or https:// URL"},
		{name: "trace sampling above 1", args: []string{"--otlp-endpoint", "http://c:4318", "--trace-sampling", "2"}, wantCode: 2, wantErr: "--trace-sampling: trace sampling 2 is not between 0 and 1"},
		{name: "OTLP header without endpoint", args: []string{"--otlp-header", "Authorization=env:T"}, wantCode: 2, wantErr: "--otlp-header needs --otlp-endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.wantCode, errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) || (tt.wantOut == "" && out.Len() > 0) {
				t.Errorf("stdout %q, want it to contain %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not say %q", errb.String(), tt.wantErr)
			}
		})
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real gateway binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gateway-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gateway")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running gateway binary.
type proc struct {
	cmd     *exec.Cmd
	data    string        // base URL of the data plane
	observe string        // base URL of the observe address, "" when none
	exited  chan struct{} // closed once Wait returned
	err     error         // Wait's result, set before exited closes
}

// wait returns Wait's result once the process exited.
func (p *proc) wait() error {
	<-p.exited
	return p.err
}

// startBinary starts the gateway and waits until it logs its data address.
func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"run", "--listen", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	logs := &syncBuffer{}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteLine(sc.Text())
			var line struct {
				Msg  string `json:"message"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "serving read-only admin routes":
				// Logged before the data plane: set before addr is sent.
				p.observe = "http://" + line.Addr
			case "serving data plane":
				addr <- line.Addr
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	select {
	case a := <-addr:
		p.data = "http://" + a
	case <-p.exited:
		t.Fatalf("gateway exited before serving: %v\n%s", p.err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not log its address within 30s\n%s", logs.String())
	}
	return p
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) WriteLine(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(l)
	s.b.WriteByte('\n')
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBinaryServesLastKnownGoodAfterKill is the end-to-end test of the real
// binary: push a bundle with the client, proxy through it, SIGKILL it,
// restart it, and find the last-known-good served at once.
func TestBinaryServesLastKnownGoodAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer up.Close()

	sockDir, err := os.MkdirTemp("", "gge2e")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "admin.sock")
	state := t.TempDir()
	args := []string{"--admin-socket", sock, "--state-dir", state, "--watch"}

	first := startBinary(t, args...)
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v, mode %v; want 0600", err, fi.Mode())
	}
	ac := client.New(sock)
	defer ac.Close()
	ctx := context.Background()
	if err := ac.Ready(ctx); !errors.Is(err, client.ErrNotReady) {
		t.Fatalf("fresh gateway Ready: %v, want ErrNotReady", err)
	}
	if code, _ := get(t, first.data+"/hello"); code != http.StatusServiceUnavailable {
		t.Fatalf("fresh gateway answers %d, want 503", code)
	}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{"all": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle("c0ffee", schemas.Source{Commit: "c0ffee"}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Put(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, first.data+"/hello"); code != 200 || body != "upstream saw /hello" {
		t.Fatalf("proxied: %d %q", code, body)
	}

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.wait()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("SIGKILL should leave the stale socket behind: %v", err)
	}

	second := startBinary(t, args...)
	// The first request after the listener opens is served from the
	// last-known-good: no agent has talked to this process.
	if code, body := get(t, second.data+"/again"); code != 200 || body != "upstream saw /again" {
		t.Fatalf("after restart: %d %q, want the last-known-good served", code, body)
	}
	st, err := ac.Status(ctx)
	if err != nil || !st.Ready || st.Version != "c0ffee" {
		t.Fatalf("status after restart: %+v, %v", st, err)
	}

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.exited:
		if err := second.err; err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not exit within 30s of SIGTERM")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after graceful exit: %v", err)
	}
}

// TestBinaryShutdownDelay sends SIGTERM to a gateway started with
// --shutdown-delay: during the delay /readyz on the observe address answers
// 503 while the data plane still serves new connections, and the process
// exits cleanly after the delay.
func TestBinaryShutdownDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer up.Close()
	sockDir, err := os.MkdirTemp("", "gge2e")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "admin.sock")
	// The delay is long enough for the checks below on a loaded machine;
	// the test asserts only that the process does not exit before it.
	const delay = 5 * time.Second
	p := startBinary(t, "--admin-socket", sock, "--state-dir", "", "--observe-addr", "127.0.0.1:0",
		"--shutdown-delay", delay.String())
	if p.observe == "" {
		t.Fatal("no observe address logged")
	}
	ac := client.New(sock)
	defer ac.Close()
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{up.URL}}},
		Routes: map[string]schemas.Route{"all": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: "app", Weight: 100}},
		}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle("d1", schemas.Source{Commit: "d1"}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Put(context.Background(), b, ""); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, p.observe+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before SIGTERM: %d, want 200", code)
	}

	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// readyz turns 503 at once; poll only because the signal is async.
	for {
		code, _ := get(t, p.observe+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if code != http.StatusOK {
			t.Fatalf("readyz after SIGTERM: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new connection is still accepted and proxied during the delay.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(p.data + "/during-delay")
	if err != nil {
		t.Fatalf("request during the shutdown delay: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream saw /during-delay" {
		t.Fatalf("during the delay: %d %q", resp.StatusCode, body)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(delay + 30*time.Second):
		t.Fatal("gateway did not exit after the shutdown delay")
	}
	if elapsed := time.Since(signalled); elapsed < delay {
		t.Fatalf("exited %v after SIGTERM, before the %v delay", elapsed, delay)
	}
}

func TestParseFlagsObserveAndShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        []string
		hosts       []string
		showSecrets bool
		delay       time.Duration
	}{
		{name: "defaults", args: nil, hosts: nil, showSecrets: false, delay: 0},
		{name: "hosts listed", args: []string{"--observe-allowed-hosts", " gw.internal, status.example.com ,"}, hosts: []string{"gw.internal", "status.example.com"}},
		{name: "secrets shown on request", args: []string{"--observe-redact-secrets=false"}, showSecrets: true},
		{name: "shutdown delay", args: []string{"--shutdown-delay", "5s"}, delay: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, exit := parseFlags(tt.args, io.Discard, io.Discard)
			if exit >= 0 {
				t.Fatalf("exit %d", exit)
			}
			if !slices.Equal(cfg.ObserveAllowedHosts, tt.hosts) || cfg.ObserveShowSecrets != tt.showSecrets || cfg.ShutdownDelay != tt.delay {
				t.Fatalf("got hosts %q, show secrets %v, delay %v", cfg.ObserveAllowedHosts, cfg.ObserveShowSecrets, cfg.ShutdownDelay)
			}
		})
	}
}

// TestParseFlagsTracing: span export is off by default; the flags reach
// the serve config.
func TestParseFlagsTracing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		endpoint string
		sampling float64
		headers  []string
	}{
		{name: "off by default", sampling: 1},
		{name: "endpoint and sampling", args: []string{"--otlp-endpoint", "http://collector:4318", "--trace-sampling", "0.25"}, endpoint: "http://collector:4318", sampling: 0.25},
		{name: "headers repeat", args: []string{"--otlp-endpoint", "https://c", "--otlp-header", "Authorization=env:T", "--otlp-header", "X-Tenant=file:/run/t"},
			endpoint: "https://c", sampling: 1, headers: []string{"Authorization=env:T", "X-Tenant=file:/run/t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, exit := parseFlags(tt.args, io.Discard, io.Discard)
			if exit >= 0 {
				t.Fatalf("exit %d", exit)
			}
			if cfg.OTLPEndpoint != tt.endpoint || cfg.TraceSampling != tt.sampling || !slices.Equal(cfg.OTLPHeaders, tt.headers) {
				t.Fatalf("got endpoint %q, sampling %v, headers %q", cfg.OTLPEndpoint, cfg.TraceSampling, cfg.OTLPHeaders)
			}
		})
	}
}

func TestParseFlagsTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		tls     serve.ListenerTLS
		observe serve.ListenerTLS
		header  string
		every   time.Duration
	}{
		{name: "defaults", tls: serve.ListenerTLS{ClientAuth: serve.ClientAuthRequired}, header: serve.DefaultClientCertHeader, every: 5 * time.Second},
		{name: "data plane",
			args:   []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-dir", "/certs", "--client-ca", "ca.pem", "--client-auth", "optional", "--client-cert-header", "X-Peer", "--tls-reload-interval", "1m"},
			tls:    serve.ListenerTLS{Cert: "c.pem", Key: "k.pem", Dir: "/certs", ClientCA: "ca.pem", ClientAuth: serve.ClientAuthOptional},
			header: "X-Peer", every: time.Minute},
		{name: "observe address",
			args:    []string{"--observe-tls-cert", "o.pem", "--observe-tls-key", "ok.pem", "--observe-tls-dir", "/ocerts", "--observe-client-ca", "oca.pem", "--client-cert-header", ""},
			tls:     serve.ListenerTLS{ClientAuth: serve.ClientAuthRequired},
			observe: serve.ListenerTLS{Cert: "o.pem", Key: "ok.pem", Dir: "/ocerts", ClientCA: "oca.pem"},
			every:   5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, exit := parseFlags(tt.args, io.Discard, io.Discard)
			if exit >= 0 {
				t.Fatalf("exit %d", exit)
			}
			if cfg.TLS != tt.tls || cfg.ObserveTLS != tt.observe || cfg.ClientCertHeader != tt.header || cfg.TLSReloadInterval != tt.every {
				t.Fatalf("got TLS %+v, observe TLS %+v, header %q, interval %v", cfg.TLS, cfg.ObserveTLS, cfg.ClientCertHeader, cfg.TLSReloadInterval)
			}
		})
	}
}
