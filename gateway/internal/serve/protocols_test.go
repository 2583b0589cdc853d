package serve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gitgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestDataPlaneProtocols(t *testing.T) {
	t.Parallel()
	up := upstream(t, "alpha")
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	h2c := func() *http.Transport {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		return &http.Transport{Protocols: &p}
	}
	tests := []struct {
		name      string
		cfg       func(*Config)
		scheme    string
		transport func() *http.Transport
		wantProto int
	}{
		{name: "HTTP/1.1", scheme: "http", transport: func() *http.Transport { return &http.Transport{} }, wantProto: 1},
		{name: "h2c prior knowledge", cfg: func(c *Config) { c.H2C = true }, scheme: "http", transport: h2c, wantProto: 2},
		{name: "HTTP/1.1 still served with h2c on", cfg: func(c *Config) { c.H2C = true }, scheme: "http",
			transport: func() *http.Transport { return &http.Transport{} }, wantProto: 1},
		{name: "TLS negotiates HTTP/2", cfg: func(c *Config) { c.TLS.Cert, c.TLS.Key = certFile, keyFile }, scheme: "https",
			transport: func() *http.Transport {
				return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
			}, wantProto: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, "", tt.cfg)
			if g.admin == nil {
				t.Fatalf("Run failed: %v", <-g.done)
			}
			if _, err := g.admin.Put(context.Background(), bundle(t, "v1", up.URL, "app"), ""); err != nil {
				t.Fatal(err)
			}
			tr := tt.transport()
			defer tr.CloseIdleConnections()
			url := tt.scheme + "://" + g.data[len("http://"):] + "/p"
			resp, err := (&http.Client{Transport: tr}).Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "alpha" || resp.ProtoMajor != tt.wantProto {
				t.Fatalf("got %d %q over %s, want 200 alpha over HTTP/%d", resp.StatusCode, body, resp.Proto, tt.wantProto)
			}
		})
	}
}
