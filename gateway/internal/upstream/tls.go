package upstream

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/schemas"
)

// tlsConfig builds the client TLS configuration of an upstream's https://
// targets from its tls section, resolving the references with secrets. A
// nil section gives the defaults: system roots, SNI from the target host,
// TLS 1.2 or newer. A reference that does not resolve or a PEM that does not
// parse is a diagnostic at path (upstreams.<name>.tls) naming the reference;
// its value is never in a message.
func tlsConfig(path string, spec *schemas.UpstreamTLS, secrets secretref.Source) (*tls.Config, []schemas.Diagnostic) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if spec == nil {
		return cfg, nil
	}
	var diags []schemas.Diagnostic
	at := func(field, format string, args ...any) {
		diags = append(diags, schemas.Diagnostic{Path: path + field, Message: fmt.Sprintf(format, args...)})
	}
	switch spec.MinVersion {
	case "", schemas.TLSVersion12:
	case schemas.TLSVersion13:
		cfg.MinVersion = tls.VersionTLS13
	default:
		at(".minVersion", "minVersion %q: use \"1.2\" or \"1.3\"", spec.MinVersion)
	}
	cfg.ServerName = spec.ServerName
	// An explicit opt-in that the runtime logs at each apply; never a
	// fallback.
	cfg.InsecureSkipVerify = spec.InsecureSkipVerify
	if ref := spec.CARef; ref != nil {
		pem, err := secrets.Resolve(ref)
		if err != nil {
			at(".caRef", "CA bundle %s: %v", ref, err)
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				at(".caRef", "CA bundle %s holds no PEM certificate", ref)
			} else {
				cfg.RootCAs = pool
			}
		}
	}
	if spec.ClientCertRef != nil && spec.ClientKeyRef != nil {
		certPEM, err := secrets.Resolve(spec.ClientCertRef)
		if err != nil {
			at(".clientCertRef", "client certificate %s: %v", spec.ClientCertRef, err)
		}
		keyPEM, kerr := secrets.Resolve(spec.ClientKeyRef)
		if kerr != nil {
			at(".clientKeyRef", "client key %s: %v", spec.ClientKeyRef, kerr)
		}
		if err == nil && kerr == nil {
			// tls.X509KeyPair's errors describe the PEM blocks, not
			// their bytes.
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				at(".clientCertRef", "client certificate %s with key %s: %v", spec.ClientCertRef, spec.ClientKeyRef, err)
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
	}
	return cfg, diags
}

// materialDigest is a digest of what the references of spec resolve to
// now, "" for a section without any. A pool built when the digest was
// different holds older CAs or client certificates than the files or
// variables now give.
func materialDigest(spec *schemas.UpstreamTLS, secrets secretref.Source) string {
	if spec == nil || spec.CARef == nil && spec.ClientCertRef == nil && spec.ClientKeyRef == nil {
		return ""
	}
	h := sha256.New()
	for _, ref := range []*schemas.SecretRef{spec.CARef, spec.ClientCertRef, spec.ClientKeyRef} {
		if ref == nil {
			h.Write([]byte{0})
			continue
		}
		b, err := secrets.Resolve(ref)
		if err != nil {
			h.Write([]byte{1})
			continue
		}
		h.Write([]byte{2})
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
