package cache

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// clientCert returns a self-signed client certificate for cn.
func clientCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientCertificateIsACredential: with mTLS the gateway passes the
// verified subject upstream (--client-cert-header), and an upstream that
// answers per subject without saying private must not have alice's
// answer served to bob or to a client without a certificate.
func TestClientCertificateIsACredential(t *testing.T) {
	t.Parallel()
	alice, bob := clientCert(t, "alice"), clientCert(t, "bob")
	req := func(c *x509.Certificate) *http.Request {
		r := httptest.NewRequest("GET", "https://a.example/me", nil)
		if c != nil {
			r.TLS.PeerCertificates = []*x509.Certificate{c}
			r.TLS.VerifiedChains = [][]*x509.Certificate{{c}}
			r.Header.Set("X-Client-Cert-Subject", c.Subject.String()) // as serve sets it
		}
		return r
	}
	tests := []struct {
		name          string
		cc            string
		first, second *x509.Certificate
		want          string
	}{
		{"alice's answer not served to bob", "max-age=60", alice, bob, "hello CN=bob"},
		{"alice's answer not served without a certificate", "max-age=60", alice, nil, "hello "},
		{"public answer shared", "public, max-age=60", alice, bob, "hello CN=alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t, 0)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tt.cc)
				_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Client-Cert-Subject"))
			})
			h := one(t, s, b, schemas.RouteCache{})
			h.ServeHTTP(httptest.NewRecorder(), req(tt.first))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req(tt.second))
			if got := w.Body.String(); got != tt.want {
				t.Errorf("second request got %q, want %q", got, tt.want)
			}
		})
	}
}
