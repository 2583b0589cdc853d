package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/schemas"
)

// testCA is a private certificate authority written in a test's TempDir.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string // the CA certificate, PEM
	dir     string
	serial  int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gitgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, dir: t.TempDir(), serial: 1}
	ca.pemPath = ca.write(t, "ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue signs a leaf for the DNS names (and 127.0.0.1) valid from
// notBefore to notAfter, for servers or clients by usage. It returns the
// pair and the paths of its PEM certificate and key.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage, notBefore, notAfter time.Time, dns ...string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath := ca.write(t, name+".pem", "CERTIFICATE", der)
	keyPath := ca.write(t, name+"-key.pem", "PRIVATE KEY", kder)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPath, keyPath
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsServer starts an https server with cfg that answers 200 "ok" and
// records the SNI name of the last handshake.
func tlsServer(t *testing.T, cfg *tls.Config, sni *atomic.Value) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	if sni != nil {
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni.Store(h.ServerName)
			return nil, nil
		}
	}
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the clients' errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// secretSource resolves {env} references from env and {file} ones from
// the file system.
func secretSource(env map[string]string) secretref.Source {
	return secretref.Source{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

func file(p string) *schemas.SecretRef { return &schemas.SecretRef{File: p} }

func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	other := newTestCA(t)
	now := time.Now()
	serverPair, _, _ := ca.issue(t, "upstream", x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(time.Hour), "api.internal", "localhost")
	expiredPair, _, _ := ca.issue(t, "expired", x509.ExtKeyUsageServerAuth, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "api.internal")
	_, clientCert, clientKey := ca.issue(t, "client", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(time.Hour))
	_, strangerCert, strangerKey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(time.Hour))

	plain := func() *tls.Config { return &tls.Config{Certificates: []tls.Certificate{serverPair}} }
	mtls := func() *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool()}
	}
	cases := []struct {
		name    string
		server  func() *tls.Config
		tls     *schemas.UpstreamTLS
		host    string // replaces 127.0.0.1 in the target URL
		wantErr string // "" : the request succeeds
		wantSNI string
	}{
		{name: "private CA with caRef", server: plain, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath)}},
		{name: "private CA without caRef", server: plain, tls: nil, wantErr: "x509: certificate signed by unknown authority"},
		{name: "another CA in caRef", server: plain, tls: &schemas.UpstreamTLS{CARef: file(other.pemPath)}, wantErr: "x509: certificate signed by unknown authority"},
		{name: "serverName is sent as SNI and verified", server: plain, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), ServerName: "api.internal"}, wantSNI: "api.internal"},
		{name: "serverName the certificate does not name", server: plain, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), ServerName: "db.internal"}, wantErr: "x509: certificate is valid for api.internal, localhost, not db.internal"},
		{name: "SNI defaults to the target host", server: plain, host: "localhost", tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath)}, wantSNI: "localhost"},
		{name: "mTLS with a client certificate", server: mtls, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), ClientCertRef: file(clientCert), ClientKeyRef: file(clientKey)}},
		{name: "mTLS without a client certificate", server: mtls, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath)}, wantErr: "certificate required"},
		{name: "mTLS with a certificate of another CA", server: mtls, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), ClientCertRef: file(strangerCert), ClientKeyRef: file(strangerKey)}, wantErr: "tls: unknown certificate authority"},
		{name: "minVersion 1.3 against a 1.2-only server", server: func() *tls.Config {
			c := plain()
			c.MaxVersion = tls.VersionTLS12
			return c
		}, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), MinVersion: "1.3"}, wantErr: "protocol version"},
		{name: "minVersion 1.2 against a 1.2-only server", server: func() *tls.Config {
			c := plain()
			c.MaxVersion = tls.VersionTLS12
			return c
		}, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath), MinVersion: "1.2"}},
		{name: "expired certificate", server: func() *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{expiredPair}}
		}, tls: &schemas.UpstreamTLS{CARef: file(ca.pemPath)}, wantErr: "x509: certificate has expired"},
		{name: "insecureSkipVerify accepts an unknown CA", server: plain, tls: &schemas.UpstreamTLS{InsecureSkipVerify: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sni atomic.Value
			srv := tlsServer(t, tc.server(), &sni)
			target := srv.URL
			if tc.host != "" {
				target = strings.Replace(target, "127.0.0.1", tc.host, 1)
			}
			p, err := NewPool("u", defaulted(schemas.Upstream{Targets: []string{target}, TLS: tc.tls}), Options{})
			if err != nil {
				t.Fatalf("NewPool: %v", err)
			}
			t.Cleanup(p.Close)
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target+"/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Transport().RoundTrip(req)
			if tc.wantErr != "" {
				if err == nil {
					_ = res.Body.Close()
					t.Fatalf("request succeeded with status %d, want an error with %q", res.StatusCode, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if tc.wantSNI != "" {
				if got, _ := sni.Load().(string); got != tc.wantSNI {
					t.Fatalf("SNI %q, want %q", got, tc.wantSNI)
				}
			}
		})
	}
}

func TestUpstreamTLSRefsRejected(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	now := time.Now()
	_, certPath, keyPath := ca.issue(t, "client", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(time.Hour))
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM at all: s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CA_EMPTY": ""}
	cases := []struct {
		name     string
		tls      schemas.UpstreamTLS
		path     string
		mentions string
	}{
		{"CA file missing", schemas.UpstreamTLS{CARef: file("/nonexistent/ca.pem")}, "upstreams.u.tls.caRef", "file:/nonexistent/ca.pem"},
		{"CA env unset", schemas.UpstreamTLS{CARef: &schemas.SecretRef{Env: "NO_SUCH_CA"}}, "upstreams.u.tls.caRef", "env:NO_SUCH_CA"},
		{"CA env empty", schemas.UpstreamTLS{CARef: &schemas.SecretRef{Env: "CA_EMPTY"}}, "upstreams.u.tls.caRef", "env:CA_EMPTY"},
		{"CA not PEM", schemas.UpstreamTLS{CARef: file(garbage)}, "upstreams.u.tls.caRef", "file:" + garbage},
		{"client key not PEM", schemas.UpstreamTLS{ClientCertRef: file(certPath), ClientKeyRef: file(garbage)}, "upstreams.u.tls.clientCertRef", "file:" + garbage},
		{"client key is the certificate", schemas.UpstreamTLS{ClientCertRef: file(certPath), ClientKeyRef: file(certPath)}, "upstreams.u.tls.clientCertRef", "file:" + certPath},
		{"client cert missing", schemas.UpstreamTLS{ClientCertRef: file("/nonexistent/c.pem"), ClientKeyRef: file(keyPath)}, "upstreams.u.tls.clientCertRef", "file:/nonexistent/c.pem"},
		{"client cert without key", schemas.UpstreamTLS{ClientCertRef: file(certPath)}, "upstreams.u.tls.clientKeyRef", "together"},
		{"ref with env and file", schemas.UpstreamTLS{CARef: &schemas.SecretRef{Env: "A", File: "/b"}}, "upstreams.u.tls.caRef", "exactly one"},
		{"unknown minVersion", schemas.UpstreamTLS{MinVersion: "1.1"}, "upstreams.u.tls.minVersion", "1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := defaulted(schemas.Upstream{Targets: []string{"https://127.0.0.1:1"}, TLS: &tc.tls})
			_, err := NewPool("u", spec, Options{Secrets: secretSource(env)})
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *schemas.InvalidError", err)
			}
			found := false
			for _, d := range inv.Diagnostics {
				if d.Path == tc.path && strings.Contains(d.Message, tc.mentions) {
					found = true
				}
				if strings.Contains(d.Message, "s3cr3t") {
					t.Fatalf("diagnostic repeats the value: %s", d.Message)
				}
			}
			if !found {
				t.Fatalf("diagnostics %v, want one at %s mentioning %q", inv.Diagnostics, tc.path, tc.mentions)
			}
		})
	}
}

func TestHealthCheckOverTLS(t *testing.T) {
	// Not parallel with the other tests: TestHealthCheckMarksDownAndUp
	// looks for health checker goroutines in every stack.
	ca := newTestCA(t)
	now := time.Now()
	serverPair, _, _ := ca.issue(t, "upstream", x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(time.Hour))
	_, clientCert, clientKey := ca.issue(t, "client", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(time.Hour))
	cases := []struct {
		name    string
		tls     *schemas.UpstreamTLS
		healthy bool
	}{
		{"CA and client certificate", &schemas.UpstreamTLS{CARef: file(ca.pemPath), ClientCertRef: file(clientCert), ClientKeyRef: file(clientKey)}, true},
		{"no client certificate", &schemas.UpstreamTLS{CARef: file(ca.pemPath)}, false},
		{"system roots", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			unhealthyAfter := 1
			if tc.healthy {
				unhealthyAfter = 3
			}
			var probes atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				probes.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool()}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes
			srv.StartTLS()
			t.Cleanup(srv.Close)
			p := mustPool(t, schemas.Upstream{
				Targets: []string{srv.URL},
				TLS:     tc.tls,
				// A passing target must fail 3 probes in a row to go down,
				// so a slow handshake on a loaded machine cannot flip it;
				// a failing one goes down at its first probe.
				HealthCheck: &schemas.HealthCheck{Interval: schemas.Duration(100 * time.Millisecond), Timeout: schemas.Duration(100 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: unhealthyAfter},
			}, nil)
			p.Start()
			if tc.healthy {
				eventually(t, func() bool { return probes.Load() >= 2 })
				if !p.Status()[0].Healthy {
					t.Fatal("target answering probes over mTLS is unhealthy")
				}
				return
			}
			eventually(t, func() bool { return !p.Status()[0].Healthy })
			if n := probes.Load(); n != 0 {
				t.Fatalf("%d probes reached the handler without a verified handshake", n)
			}
		})
	}
}
