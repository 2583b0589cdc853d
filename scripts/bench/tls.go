package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// scheme is the URL scheme of a listener with (cert != "") or without TLS.
func scheme(cert string) string {
	if cert != "" {
		return "https://"
	}
	return "http://"
}

// writeCert writes one self-signed ECDSA P-256 certificate for 127.0.0.1
// and localhost into dir, as bench.crt and bench.key (PEM).
func writeCert(dir string) (cert, key string, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating the bench key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", fmt.Errorf("signing the bench certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("encoding the bench key: %w", err)
	}
	cert, key = filepath.Join(dir, "bench.crt"), filepath.Join(dir, "bench.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return cert, key, nil
}

// tlsThroughput loads gitgate and nginx listening with TLS on the same
// certificate (wrk over https, keep-alive connections), beside both in plain
// HTTP, all proxying to the same plain-HTTP upstream, and reports ratios to
// nginx from the same run.
func tlsThroughput(ctx context.Context, cfg benchConfig, env benchEnv) (string, error) {
	cert, key, err := writeCert(env.dir)
	if err != nil {
		return "", err
	}
	targets := []target{
		&gitgate{bin: env.gateway, label: "gitgate TLS", tlsCert: cert, tlsKey: key},
		&nginx{label: "nginx TLS", cert: cert, key: key},
		&gitgate{bin: env.gateway, label: "gitgate"},
		&nginx{},
		&gitgate{bin: env.gateway, label: "gitgate net/http TLS", tlsCert: cert, tlsKey: key, http1: "net"},
		&gitgate{bin: env.gateway, label: "gitgate net/http", http1: "net"},
	}
	active, samples, err := interleave(ctx, cfg, env, targets)
	if err != nil {
		return "", err
	}
	med := func(name string, f func(sample) float64) float64 { return medianOf(samples[name], f) }
	rps := func(s sample) float64 { return s.wrk.RPS }
	cpu := func(s sample) float64 { return s.cpuPerReqUS }
	var b strings.Builder
	fmt.Fprintf(&b, "## TLS listener throughput (wrk over https on CPU 0, proxy + upstream on CPU 1, %d keep-alive connections, %d runs of %v, medians)\n\n", cfg.conns, cfg.runs, cfg.duration)
	fmt.Fprintf(&b, "Machine: %s; load average %s\n\n", machineLine(), loadAvg())
	b.WriteString("| target | req/s | p50 | p99 | proxy CPU µs/req | vs nginx (same listener) req/s | vs nginx CPU/req |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range active {
		n := t.Name()
		ref := strings.Replace(strings.Replace(n, " net/http", "", 1), "gitgate", "nginx", 1)
		r, c := med(n, rps), med(n, cpu)
		ratio, cpuRatio, cpuS := "-", "-", "-"
		if x := med(ref, rps); x > 0 {
			ratio = fmt.Sprintf("%.2f", r/x)
		}
		if x := med(ref, cpu); x > 0 && c > 0 {
			cpuRatio = fmt.Sprintf("%.2f", c/x)
		}
		if c > 0 {
			cpuS = fmt.Sprintf("%.1f", c)
		}
		p50 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P50) }))
		p99 := time.Duration(med(n, func(s sample) float64 { return float64(s.wrk.P99) }))
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %s | %s | %s |\n", n, r, p50.Round(time.Microsecond), p99.Round(time.Microsecond), cpuS, ratio, cpuRatio)
	}
	for _, n := range []string{"gitgate", "gitgate net/http", "nginx"} {
		if p, t := med(n, rps), med(n+" TLS", rps); p > 0 && t > 0 {
			fmt.Fprintf(&b, "\n%s TLS / plain: %.2f req/s", n, t/p)
		}
	}
	b.WriteString("\n")
	return b.String(), nil
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
