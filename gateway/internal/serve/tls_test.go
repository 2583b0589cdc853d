package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/certs/certstest"
	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// subjectEcho answers every spelling of DefaultClientCertHeader it got,
// sorted, one "name=value" a line.
func subjectEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vs := range r.Header {
			if headers.SameCGIName(k, DefaultClientCertHeader) {
				for _, v := range vs {
					lines = append(lines, k+"="+v)
				}
			}
		}
		sort.Strings(lines)
		_, _ = io.WriteString(w, strings.Join(lines, "\n"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startTLSGateway(t *testing.T, up string, tweak func(*Config)) *gateway {
	t.Helper()
	g := startGateway(t, "", tweak)
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	if _, err := g.admin.Put(context.Background(), bundle(t, "v1", up, "app"), ""); err != nil {
		t.Fatal(err)
	}
	return g
}

func hostPort(u string) string { return u[strings.Index(u, "://")+3:] }

func TestListenerClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	other := certstest.NewCA(t, dir, "other")
	server := ca.Issue(t, "gateway", "127.0.0.1")
	server.WritePair(t, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	client := ca.Issue(t, "billing-job")
	stranger := other.Issue(t, "stranger")
	up := subjectEcho(t)
	spoofed := map[string]string{"X-Client-Cert-Subject": "CN=admin", "X_Client_Cert_Subject": "CN=admin", "x-client-cert_subject": "CN=admin"}
	const wantSubject = "X-Client-Cert-Subject=CN=billing-job,O=gitgate tests"

	for _, tc := range []struct {
		name     string
		mode     string
		cert     *tls.Certificate
		wantErr  bool
		wantBody string
	}{
		{name: "required refuses a client without a certificate", mode: ClientAuthRequired, wantErr: true},
		{name: "required refuses a certificate of another CA", mode: ClientAuthRequired, cert: &stranger.TLS, wantErr: true},
		{name: "required passes the verified subject, spoofs removed", mode: ClientAuthRequired, cert: &client.TLS, wantBody: wantSubject},
		{name: "optional passes a client without a certificate, without the header", mode: ClientAuthOptional},
		{name: "optional passes the verified subject", mode: ClientAuthOptional, cert: &client.TLS, wantBody: wantSubject},
		{name: "optional still refuses a certificate that does not verify", mode: ClientAuthOptional, cert: &stranger.TLS, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startTLSGateway(t, up.URL, func(c *Config) {
				c.TLS = ListenerTLS{Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"), ClientCA: ca.File, ClientAuth: tc.mode}
				c.ClientCertHeader = DefaultClientCertHeader
			})
			cfg := &tls.Config{RootCAs: ca.Pool}
			if tc.cert != nil {
				// Sent even when the server's CA list does not name its issuer.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, "https://"+hostPort(g.data)+"/p", nil)
			for k, v := range spoofed {
				req.Header[k] = []string{v}
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with %d, want a failed handshake", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != tc.wantBody {
				t.Fatalf("got %d, upstream saw %q; want 200 and %q", resp.StatusCode, body, tc.wantBody)
			}
		})
	}
}

func TestObserveAddressTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	ca.Issue(t, "observe", "127.0.0.1").WritePair(t, filepath.Join(dir, "o.crt"), filepath.Join(dir, "o.key"))
	client := ca.Issue(t, "fleet-tool")
	g := startGateway(t, "", func(c *Config) {
		c.ObserveAddr = "127.0.0.1:0"
		c.ObserveTLS = ListenerTLS{Cert: filepath.Join(dir, "o.crt"), Key: filepath.Join(dir, "o.key"), ClientCA: ca.File}
	})
	if g.admin == nil {
		t.Fatalf("Run failed: %v", <-g.done)
	}
	for _, tc := range []struct {
		name    string
		scheme  string
		cert    bool
		wantErr bool
	}{
		{name: "client without a certificate is refused", scheme: "https", wantErr: true},
		{name: "plain HTTP is refused", scheme: "http", wantErr: true},
		{name: "client with a certificate reads /metrics", scheme: "https", cert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: ca.Pool}
			if tc.cert {
				cfg.Certificates = []tls.Certificate{client.TLS}
			}
			tr := &http.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(tc.scheme + "://" + hostPort(g.observe) + "/metrics")
			if err == nil {
				defer resp.Body.Close()
			}
			switch {
			case tc.wantErr && err == nil && resp.StatusCode == 200:
				t.Fatalf("got %d, want a refusal", resp.StatusCode)
			case !tc.wantErr && err != nil:
				t.Fatal(err)
			case !tc.wantErr && resp.StatusCode != 200:
				t.Fatalf("got %d, want 200", resp.StatusCode)
			}
		})
	}
}

// TestListenerCertificateRotationUnderLoad swaps a Secret volume's ..data
// symlink while clients send requests without retrying, some on kept-alive
// connections opened before the swap, some on a new connection each: none
// fails, and new handshakes get the new certificate.
func TestListenerCertificateRotationUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	first, second := ca.Issue(t, "first", "127.0.0.1"), ca.Issue(t, "second", "127.0.0.1")
	vol := certstest.NewSecretVolume(t, filepath.Join(dir, "tls", "gateway"), first)
	up := upstream(t, "alpha")
	g := startTLSGateway(t, up.URL, func(c *Config) {
		c.TLS = ListenerTLS{Dir: filepath.Join(dir, "tls")}
		c.TLSReloadInterval = 10 * time.Millisecond
	})
	url := "https://" + hostPort(g.data) + "/p"

	var ok, failed atomic.Int64
	var seen sync.Map // serial -> true
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(keepAlive bool) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			// POST is never replayed by the transport: a failure counts.
			resp, err := cl.Post(url, "text/plain", strings.NewReader("x"))
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "alpha" {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, body))
				continue
			}
			seen.Store(resp.TLS.PeerCertificates[0].SerialNumber.String(), true)
			ok.Add(1)
		}
	}
	for i := range 4 {
		wg.Go(func() { worker(i%2 == 0) })
	}
	has := func(l certstest.Leaf) func() bool {
		return func() bool { _, found := seen.Load(l.Serial.String()); return found }
	}
	waitFor(t, has(first))
	vol.Swap(t, second.CertPEM, second.KeyPEM)
	waitFor(t, has(second))
	before := ok.Load()
	waitFor(t, func() bool { return ok.Load() > before+50 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across the rotation; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, 0 failed, across one rotation", ok.Load())
}
