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
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "zb-listener-cert-rotation",
		criterion: "a gateway serving TLS from --tls-dir, laid out as a Kubernetes Secret volume, has its certificate " +
			"rotated by swapping the ..data symlink while four clients send POSTs without retrying (two on kept-alive " +
			"connections, two on a new connection each): no request fails, new handshakes get the new certificate, " +
			"and a later swap to a key that does not match keeps the new certificate serving with no failure",
		run: listenerCertRotation,
	})
}

// tlsCA signs the scenario's certificates.
type tlsCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTLSCA() (*tlsCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tlsCA{cert: c, key: key, pool: pool}, nil
}

// issue signs a server certificate for 127.0.0.1 with serial n and returns
// its certificate and key PEM.
func (ca *tlsCA) issue(n int64) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing certificate %d: %w", n, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key %d: %w", n, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// secretSwap writes generation gen of a Secret volume in dir and points
// ..data at it with one rename, as the kubelet does; the first call also
// makes the tls.crt and tls.key links.
func secretSwap(dir string, gen int, certPEM, keyPEM []byte) error {
	g := filepath.Join(dir, fmt.Sprintf("..gen%d", gen))
	if err := os.MkdirAll(g, 0o700); err != nil {
		return fmt.Errorf("making %s: %w", g, err)
	}
	if err := os.WriteFile(filepath.Join(g, "tls.crt"), certPEM, 0o600); err != nil {
		return fmt.Errorf("writing tls.crt: %w", err)
	}
	if err := os.WriteFile(filepath.Join(g, "tls.key"), keyPEM, 0o600); err != nil {
		return fmt.Errorf("writing tls.key: %w", err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(g), tmp); err != nil {
		return fmt.Errorf("linking ..data_tmp: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return fmt.Errorf("swapping ..data: %w", err)
	}
	if gen == 1 {
		for _, n := range []string{"tls.crt", "tls.key"} {
			if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("linking %s: %w", n, err)
			}
		}
	}
	return nil
}

func listenerCertRotation(ctx context.Context, t *T) error {
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	ca, err := newTLSCA()
	if err != nil {
		return err
	}
	vol := filepath.Join(st.Dir, "tls", "gateway")
	c1, k1, err := ca.issue(101)
	if err != nil {
		return err
	}
	if err := secretSwap(vol, 1, c1, k1); err != nil {
		return err
	}
	// Restart the gateway over TLS; it serves c1 from its last-known-good.
	if err := st.Gateway.Stop(); err != nil {
		return fmt.Errorf("stopping the first gateway: %w", err)
	}
	args := append(st.GatewayArgs(), "--tls-dir", filepath.Join(st.Dir, "tls"), "--tls-reload-interval", "500ms")
	p, err := harness.Start(st.Dir, "gateway-tls", append([]string{st.Bins.Gateway}, args...)...)
	if err != nil {
		return err
	}
	st.Gateway = p
	url := "https://" + st.GatewayAddr + "/"

	var ok, failed atomic.Int64
	var serials sync.Map // serial -> count
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(keepAlive bool) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			// A POST is never replayed by the transport: every failure counts.
			resp, err := cl.Post(url, "text/plain", strings.NewReader("x"))
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Config") != "c1" {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%d config=%q", resp.StatusCode, resp.Header.Get("X-Config")))
				continue
			}
			ok.Add(1)
			serials.Store(resp.TLS.PeerCertificates[0].SerialNumber.Int64(), true)
		}
	}
	saw := func(serial int64) func() (bool, error) {
		return func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("gateway exited: %v (see %s)", p.Err(), p.Log)
			}
			_, found := serials.Load(serial)
			return found, nil
		}
	}
	// The workers start once the gateway serves, so none fails on a
	// connection refused before it listens.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, DisableKeepAlives: true}}
	if err := harness.WaitFor(ctx, 15*time.Second, "the gateway serving c1 over TLS", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", p.Err(), p.Log)
		}
		resp, err := probe.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Config") == "c1", nil
	}); err != nil {
		return err
	}
	for i := range 4 {
		wg.Go(func() { worker(i%2 == 0) })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	if err := harness.WaitFor(ctx, 10*time.Second, "requests served with the first certificate", saw(101)); err != nil {
		return err
	}
	c2, k2, err := ca.issue(102)
	if err != nil {
		return err
	}
	if err := secretSwap(vol, 2, c2, k2); err != nil {
		return err
	}
	rotated := time.Now()
	if err := harness.WaitFor(ctx, 15*time.Second, "a handshake with the rotated certificate", saw(102)); err != nil {
		return err
	}
	t.Logf("rotated certificate served %v after the swap", time.Since(rotated).Round(time.Millisecond))

	// A bad swap: certificate 103 with the key of 102. The gateway keeps 102.
	serials.Delete(int64(102))
	c3, _, err := ca.issue(103)
	if err != nil {
		return err
	}
	if err := secretSwap(vol, 3, c3, k2); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // four reload polls
	if err := harness.WaitFor(ctx, 10*time.Second, "handshakes still with the rotated certificate after a bad swap", saw(102)); err != nil {
		return err
	}
	close(stop)
	wg.Wait()
	if _, found := serials.Load(int64(103)); found {
		return fmt.Errorf("the certificate of a mismatched pair was served")
	}
	if n := failed.Load(); n != 0 {
		return fmt.Errorf("%d of %d requests failed across the rotation; first: %v (see %s)", n, n+ok.Load(), firstErr.Load(), p.Log)
	}
	logged, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Errorf("reading the gateway log: %w", err)
	}
	if !strings.Contains(string(logged), "did not load; still serving the previous ones") {
		return fmt.Errorf("the bad swap was not logged (see %s)", p.Log)
	}
	t.Logf("%d requests, 0 failed, across a rotation and a refused bad swap", ok.Load())
	return nil
}
