package runtime

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// tlsNamed is an https upstream with a certificate of httptest's own CA,
// which no system root trusts, and the path of that CA in PEM.
func tlsNamed(t *testing.T, name string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

// logged returns the JSON log lines whose message is msg.
func logged(sink *lockedBuffer, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range sink.lines() {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestUpstreamTLSThroughGateway: an https upstream signed by a private CA
// is reached with caRef; without it the request is a 502 whose logged cause
// is the verification failure, never a fallback to an unverified
// connection; insecureSkipVerify works and is a warning at each apply.
func TestUpstreamTLSThroughGateway(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		tls        func(ca string) *schemas.UpstreamTLS
		wantStatus int
		wantCause  string
		wantWarn   bool
	}{
		{"caRef", func(ca string) *schemas.UpstreamTLS { return &schemas.UpstreamTLS{CARef: &schemas.SecretRef{File: ca}} }, http.StatusOK, "", false},
		{"caRef by env", func(string) *schemas.UpstreamTLS {
			return &schemas.UpstreamTLS{CARef: &schemas.SecretRef{Env: "UPSTREAM_CA"}}
		}, http.StatusOK, "", false},
		{"system roots only", func(string) *schemas.UpstreamTLS { return nil }, http.StatusBadGateway, "x509: certificate signed by unknown authority", false},
		{"insecureSkipVerify", func(string) *schemas.UpstreamTLS { return &schemas.UpstreamTLS{InsecureSkipVerify: true} }, http.StatusOK, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sink lockedBuffer
			srv, ca := tlsNamed(t, "secure")
			caPEM, err := os.ReadFile(ca)
			if err != nil {
				t.Fatal(err)
			}
			env := func(k string) (string, bool) {
				if k == "UPSTREAM_CA" {
					return string(caPEM), true
				}
				return "", false
			}
			e := newEngine(t, Options{Logger: zerolog.New(&sink), LookupEnv: env})
			up := ups(srv.URL)
			up.TLS = tc.tls(ca)
			cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"secure": up}, Routes: map[string]schemas.Route{"r": route("/", to("secure", 100))}}
			mustApply(t, e, cfg)
			// Another route: the pool is kept as it is, and the warning
			// is said again.
			cfg.Routes = map[string]schemas.Route{"r": cfg.Routes["r"], "r2": route("/two", to("secure", 100))}
			mustApply(t, e, cfg)
			front := front(t, e)
			code, body, _ := get(t, front.Client(), front.URL+"/x", nil)
			if code != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", code, body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK && body != "secure" {
				t.Fatalf("body %q", body)
			}
			if tc.wantCause != "" {
				fails := logged(&sink, "upstream failed")
				if len(fails) == 0 || !strings.Contains(fails[0]["cause"].(string), tc.wantCause) {
					t.Fatalf("upstream failure logs %v, want a cause with %q", fails, tc.wantCause)
				}
			}
			warns := logged(&sink, "upstream tls.insecureSkipVerify is set: the certificates of its targets are not verified")
			if tc.wantWarn {
				if len(warns) != 2 || warns[0]["upstream"] != "secure" || warns[0]["level"] != "warn" {
					t.Fatalf("insecureSkipVerify warnings %v, want one warning naming the upstream per apply", warns)
				}
			} else if len(warns) != 0 {
				t.Fatalf("unexpected insecureSkipVerify warnings %v", warns)
			}
		})
	}
}

// TestUpstreamTLSBadRefRefused: a CA reference that does not resolve or
// does not hold a PEM refuses the bundle with a diagnostic at the field
// naming the reference, and the running config keeps serving.
func TestUpstreamTLSBadRefRefused(t *testing.T) {
	t.Parallel()
	srv, ca := tlsNamed(t, "secure")
	garbage := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64 s3cr3t\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ref  schemas.SecretRef
	}{
		{"PEM that does not parse", schemas.SecretRef{File: garbage}},
		{"missing file", schemas.SecretRef{File: filepath.Join(t.TempDir(), "absent.pem")}},
		{"unset env", schemas.SecretRef{Env: "GITGATE_TEST_NO_SUCH_CA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, Options{})
			good := ups(srv.URL)
			good.TLS = &schemas.UpstreamTLS{CARef: &schemas.SecretRef{File: ca}}
			mustApply(t, e, schemas.Config{Upstreams: map[string]schemas.Upstream{"secure": good}, Routes: map[string]schemas.Route{"r": route("/", to("secure", 100))}})
			bad := ups(srv.URL)
			bad.TLS = &schemas.UpstreamTLS{CARef: &tc.ref}
			inv := invalid(t, e.Apply(bundleOf(t, schemas.Config{Upstreams: map[string]schemas.Upstream{"secure": bad}, Routes: map[string]schemas.Route{"r": route("/", to("secure", 100))}})))
			found := false
			for _, d := range inv.Diagnostics {
				found = found || d.Path == "upstreams.secure.tls.caRef" && strings.Contains(d.Message, tc.ref.String())
			}
			if !found {
				t.Fatalf("diagnostics %v, want one at upstreams.secure.tls.caRef naming %s", inv.Diagnostics, tc.ref)
			}
			if strings.Contains(inv.Error(), "s3cr3t") {
				t.Fatalf("error repeats the file's content: %v", inv)
			}
			front := front(t, e)
			if code, body, _ := get(t, front.Client(), front.URL+"/x", nil); code != http.StatusOK || body != "secure" {
				t.Fatalf("after the refused apply: %d %q", code, body)
			}
		})
	}
}

// otherCAPEM is a self-signed CA certificate in PEM that signed nothing
// the test servers present.
func otherCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestUpstreamTLSFileChangePickedUp: the settings of an upstream stay the
// same but the CA file behind its caRef changes; the next apply builds the
// pool with the new file instead of keeping the old pool.
func TestUpstreamTLSFileChangePickedUp(t *testing.T) {
	t.Parallel()
	srv, ca := tlsNamed(t, "secure")
	e := newEngine(t, Options{})
	up := ups(srv.URL)
	up.TLS = &schemas.UpstreamTLS{CARef: &schemas.SecretRef{File: ca}}
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"secure": up}, Routes: map[string]schemas.Route{"r": route("/", to("secure", 100))}}
	mustApply(t, e, cfg)
	front := front(t, e)
	if code, body, _ := get(t, front.Client(), front.URL+"/x", nil); code != http.StatusOK {
		t.Fatalf("with the right CA: %d %q", code, body)
	}
	if err := os.WriteFile(ca, otherCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Routes = map[string]schemas.Route{"r": cfg.Routes["r"], "r2": route("/two", to("secure", 100))}
	mustApply(t, e, cfg)
	// A new connection: the old pool's kept-alive one is gone with it.
	if code, body, _ := get(t, front.Client(), front.URL+"/x", nil); code != http.StatusBadGateway {
		t.Fatalf("after the CA file changed to another CA: %d %q, want 502", code, body)
	}
}
