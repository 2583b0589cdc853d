package certs_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/certs"
	"github.com/gitgate/gitgate/gateway/internal/certs/certstest"
)

// served is the serial of the certificate a real TLS handshake with
// serverName gets from s.
func served(t *testing.T, s *certs.Store, ca *certstest.CA, serverName string) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: s.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: serverName, RootCAs: ca.Pool, InsecureSkipVerify: serverName == ""})
	if err != nil {
		t.Fatalf("handshake for %q: %v", serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestSNIChoosesCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	def := ca.Issue(t, "default", "default.test")
	api := ca.Issue(t, "api", "api.example.test")
	wild := ca.Issue(t, "wild", "*.apps.example.test")
	k8s := ca.Issue(t, "k8s", "k8s.example.test")
	def.WritePair(t, filepath.Join(dir, "default.pem"), filepath.Join(dir, "default-key.pem"))
	tlsDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	api.WritePair(t, filepath.Join(tlsDir, "api.crt"), filepath.Join(tlsDir, "api.key"))
	wild.WritePair(t, filepath.Join(tlsDir, "wild.crt"), filepath.Join(tlsDir, "wild.key"))
	certstest.NewSecretVolume(t, filepath.Join(tlsDir, "k8s"), k8s)
	// A CA's ca.crt without a key is not a pair.
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), []byte("not a pair"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := certs.New(certs.Options{
		Pairs: []certs.Pair{{Cert: filepath.Join(dir, "default.pem"), Key: filepath.Join(dir, "default-key.pem")}},
		Dir:   tlsDir, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sni string
		want      certstest.Leaf
	}{
		{name: "exact name from NAME.crt", sni: "api.example.test", want: api},
		{name: "name in other case", sni: "API.Example.Test", want: api},
		{name: "wildcard", sni: "shop.apps.example.test", want: wild},
		{name: "secret volume subdirectory", sni: "k8s.example.test", want: k8s},
		{name: "explicit pair", sni: "default.test", want: def},
		{name: "unknown name gets the default", sni: "", want: def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := served(t, s, ca, tc.sni), tc.want.Serial.String(); got != want {
				t.Errorf("served serial %s, want %s", got, want)
			}
		})
	}
}

func TestReloadBySymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	first := ca.Issue(t, "first", "svc.test")
	second := ca.Issue(t, "second", "svc.test")
	vol := certstest.NewSecretVolume(t, filepath.Join(dir, "vol"), first)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "errors"})
	reloads := prometheus.NewCounter(prometheus.CounterOpts{Name: "reloads"})
	s, err := certs.New(certs.Options{Dir: dir, Errors: errs, Reloads: reloads, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		change      func()
		want        certstest.Leaf
		wantErr     bool
		errs, loads float64
	}{
		{name: "unchanged files reload nothing", change: func() {}, want: first},
		{name: "swapped ..data serves the new pair", change: func() { vol.Swap(t, second.CertPEM, second.KeyPEM) }, want: second, loads: 1},
		{name: "a key that does not match keeps the old pair", change: func() { vol.Swap(t, first.CertPEM, second.KeyPEM) }, want: second, wantErr: true, errs: 1, loads: 1},
		{name: "the same bad pair is counted once", change: func() {}, want: second, wantErr: true, errs: 1, loads: 1},
		{name: "garbage keeps the old pair", change: func() { vol.Swap(t, []byte("garbage"), []byte("garbage")) }, want: second, wantErr: true, errs: 2, loads: 1},
		{name: "a good pair again is served", change: func() { vol.Swap(t, first.CertPEM, first.KeyPEM) }, want: first, errs: 2, loads: 2},
		{name: "a bad pair seen before is counted again after a good one", change: func() { vol.Swap(t, []byte("garbage"), []byte("garbage")) }, want: first, wantErr: true, errs: 3, loads: 2},
	}
	for _, st := range steps {
		st.change()
		err := s.Reload()
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: Reload() = %v, want error %v", st.name, err, st.wantErr)
		}
		if got, want := served(t, s, ca, "svc.test"), st.want.Serial.String(); got != want {
			t.Errorf("%s: served serial %s, want %s", st.name, got, want)
		}
		if got := count(t, errs); got != st.errs {
			t.Errorf("%s: errors counter %v, want %v", st.name, got, st.errs)
		}
		if got := count(t, reloads); got != st.loads {
			t.Errorf("%s: reloads counter %v, want %v", st.name, got, st.loads)
		}
	}
}

func TestNewRefusesNoUsablePair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certstest.NewCA(t, dir, "ca")
	a, b := ca.Issue(t, "a", "a.test"), ca.Issue(t, "b", "b.test")
	mismatched := filepath.Join(dir, "mismatched")
	if err := os.Mkdir(mismatched, 0o700); err != nil {
		t.Fatal(err)
	}
	a.WritePair(t, filepath.Join(mismatched, "x.crt"), filepath.Join(mismatched, "y.key"))
	b.WritePair(t, filepath.Join(mismatched, "y.crt"), filepath.Join(mismatched, "x.key"))
	for _, tc := range []struct {
		name string
		opts certs.Options
	}{
		{name: "empty directory", opts: certs.Options{Dir: t.TempDir()}},
		{name: "missing file", opts: certs.Options{Pairs: []certs.Pair{{Cert: filepath.Join(dir, "no.crt"), Key: filepath.Join(dir, "no.key")}}}},
		{name: "key of another certificate", opts: certs.Options{Dir: mismatched}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := certs.New(tc.opts); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestClientCAReload: a client certificate of a CA added to the bundle
// file is refused before the reload and verified after it, on a real
// handshake through ConfigForClient.
func TestClientCAReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca1, ca2 := certstest.NewCA(t, dir, "ca1"), certstest.NewCA(t, dir, "ca2")
	ca1.Issue(t, "srv", "127.0.0.1").WritePair(t, filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"))
	client := ca2.Issue(t, "client")
	bundle := filepath.Join(dir, "clients.pem")
	pem1, err := os.ReadFile(ca1.File)
	if err != nil {
		t.Fatal(err)
	}
	pem2, err := os.ReadFile(ca2.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bundle, pem1, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := certs.New(certs.Options{Pairs: []certs.Pair{{Cert: filepath.Join(dir, "srv.crt"), Key: filepath.Join(dir, "srv.key")}},
		ClientCA: bundle, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{GetCertificate: s.GetCertificate, ClientAuth: tls.RequireAndVerifyClientCert}
	cfg := base.Clone()
	cfg.GetConfigForClient = s.ConfigForClient(base)
	handshake := func() error {
		l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		srvErr := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				srvErr <- err
				return
			}
			defer c.Close()
			srvErr <- c.(*tls.Conn).Handshake()
		}()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca1.Pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client.TLS, nil }})
		if err == nil {
			_ = c.Close()
		}
		return <-srvErr
	}
	for _, st := range []struct {
		name    string
		bundle  []byte
		wantErr bool
	}{
		{name: "client of a CA not in the bundle is refused", bundle: pem1, wantErr: true},
		{name: "CA added to the bundle verifies the client after a reload", bundle: append(append([]byte{}, pem1...), pem2...)},
		{name: "a bundle without a certificate keeps the last pool", bundle: []byte("garbage")},
		{name: "CA removed again refuses the client", bundle: pem1, wantErr: true},
	} {
		if err := os.WriteFile(bundle, st.bundle, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = s.Reload()
		if err := handshake(); (err != nil) != st.wantErr {
			t.Errorf("%s: server handshake error %v, want error %v", st.name, err, st.wantErr)
		}
	}
}
