package main

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
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "za-upstream-expired-cert",
		criterion: "an https upstream signed by a private CA given by caRef serves through the gateway; when the " +
			"config points at a target of the same CA whose certificate has expired, requests are 502 and the " +
			"gateway's log gives \"x509: certificate has expired\" as the cause (no unverified fallback); a caRef " +
			"to a missing file is refused by the gateway with a diagnostic at upstreams.app.tls.caRef naming the " +
			"file, and the last good config keeps serving",
		run: upstreamExpiredCert,
	})
}

// e2eCA is a private CA whose certificate is written as PEM in a directory.
type e2eCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	path   string
	serial int64
}

func newE2ECA(dir string) (*e2eCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gitgate e2e CA"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA: %w", err)
	}
	p := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing the CA: %w", err)
	}
	return &e2eCA{cert: cert, key: key, path: p, serial: 1}, nil
}

// leaf signs a server certificate for 127.0.0.1 valid from notBefore to
// notAfter.
func (ca *e2eCA) leaf(notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating a server key: %w", err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: "upstream"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing a server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveTLS starts an https upstream on loopback with cert that answers 200
// "ok" and returns its URL; the server stops at the scenario's end.
func serveTLS(t *T, cert tls.Certificate) (string, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "", fmt.Errorf("listening for the https upstream: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the gateway's refused handshakes
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String(), nil
}

// tlsConfigYAML is harness.ConfigYAML for target with a tls section that
// reads its CA from caFile.
func tlsConfigYAML(target, label, caFile string) string {
	return strings.Replace(harness.ConfigYAML(target, label, nil), "\nroutes:\n",
		fmt.Sprintf("\n    tls:\n      caRef: {file: %q}\nroutes:\n", caFile), 1)
}

func upstreamExpiredCert(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	ca, err := newE2ECA(st.Dir)
	if err != nil {
		return err
	}
	now := time.Now()
	good, err := ca.leaf(now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		return err
	}
	expired, err := ca.leaf(now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	goodURL, err := serveTLS(t, good)
	if err != nil {
		return err
	}
	expiredURL, err := serveTLS(t, expired)
	if err != nil {
		return err
	}

	// c2: the private CA by reference, a valid certificate.
	sha, err := t.pushServed(ctx, st, tlsConfigYAML(goodURL, "c2", ca.path), "c2: https upstream of a private CA", "c2")
	if err != nil {
		return err
	}
	t.Logf("c2: the https upstream of a private CA serves with caRef")

	// c3: the same CA, an expired certificate: 502 with the cause logged.
	sha, err = st.Repo.WriteCommit("config.yaml", tlsConfigYAML(expiredURL, "c3", ca.path), "c3: upstream with an expired certificate")
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	if err := harness.WaitFor(ctx, 20*time.Second, "c3 to be applied", func() (bool, error) {
		return st.Converged(ctx, sha)
	}); err != nil {
		return err
	}
	for i := range 5 {
		if r := st.Get("/"); r.Err != nil || r.Code != http.StatusBadGateway {
			return fmt.Errorf("request %d to the expired upstream: %s, want 502", i+1, r)
		}
	}
	if err := harness.WaitFor(ctx, 5*time.Second, "the gateway to log the expired certificate", func() (bool, error) {
		return logContains(st.Gateway.Log, "x509: certificate has expired"), nil
	}); err != nil {
		return fmt.Errorf("%w (see %s)", err, st.Gateway.Log)
	}
	t.Logf("c3: an expired upstream certificate is a 502 and the log says x509: certificate has expired")

	// c4: a CA file that does not exist: refused, c3's pool keeps its
	// settings and a fixed config serves again afterwards.
	missing := filepath.Join(st.Dir, "no-such-ca.pem")
	sha4, err := st.Repo.WriteCommit("config.yaml", tlsConfigYAML(goodURL, "c4", missing), "c4: caRef to a missing file")
	if err != nil {
		return err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return err
	}
	var refused *harness.Entry
	if err := harness.WaitFor(ctx, 20*time.Second, "c4 to be refused by the gateway", func() (bool, error) {
		h, err := st.History(ctx)
		if err != nil {
			return false, err
		}
		for i := range h {
			if h[i].SHA == sha4 && h[i].Result != "applied" && len(h[i].Diagnostics) > 0 {
				refused = &h[i]
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	found := false
	for _, d := range refused.Diagnostics {
		found = found || d.Path == "upstreams.app.tls.caRef" && strings.Contains(d.Message, "file:"+missing)
	}
	if !found {
		return fmt.Errorf("c4 was refused with %+v, want a diagnostic at upstreams.app.tls.caRef naming file:%s", refused.Diagnostics, missing)
	}
	if r := st.Get("/"); r.Code != http.StatusBadGateway {
		return errors.New("after the refused c4 the gateway no longer runs c3: " + r.String())
	}
	t.Logf("c4: caRef to a missing file refused (%s) at upstreams.app.tls.caRef; c3 still runs", refused.Result)
	return nil
}
