package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/gateway/internal/certs"
	"github.com/gitgate/gitgate/gateway/internal/headers"
)

// Client certificate modes of ListenerTLS.ClientAuth.
const (
	ClientAuthRequired = "required"
	ClientAuthOptional = "optional"
)

// DefaultClientCertHeader is the request header that carries a verified
// client certificate's subject to the upstream.
const DefaultClientCertHeader = "X-Client-Cert-Subject"

// ListenerTLS is the TLS of one listener. It is on when Cert and Key, or
// Dir, are set.
type ListenerTLS struct {
	// Cert and Key are a certificate and key file; the default certificate
	// when set.
	Cert, Key string
	// Dir holds more pairs chosen by SNI: NAME.crt with NAME.key, in Dir
	// and its direct subdirectories (a cert-manager Secret mounted at
	// Dir/NAME holds tls.crt and tls.key).
	Dir string
	// ClientCA, when set, is a PEM bundle of the CAs that sign client
	// certificates (mTLS).
	ClientCA string
	// ClientAuth is ClientAuthRequired (the default with ClientCA: a
	// client without a valid certificate fails the handshake) or
	// ClientAuthOptional (a certificate, when sent, must verify).
	ClientAuth string
}

// Enabled reports whether the listener serves TLS.
func (t ListenerTLS) Enabled() bool { return t.Cert != "" || t.Dir != "" }

func (t ListenerTLS) check(flag string) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("--%stls-cert and --%stls-key go together", flag, flag)
	}
	if t.ClientCA != "" && !t.Enabled() {
		return fmt.Errorf("--%sclient-ca needs TLS: --%stls-cert and --%stls-key, or --%stls-dir", flag, flag, flag, flag)
	}
	switch t.ClientAuth {
	case "", ClientAuthRequired, ClientAuthOptional:
	default:
		return fmt.Errorf("--client-auth %q is not required or optional", t.ClientAuth)
	}
	return nil
}

// tlsMetrics count certificate reloads per listener.
type tlsMetrics struct {
	reloads, errors *prometheus.CounterVec
}

func newTLSMetrics(reg prometheus.Registerer) tlsMetrics {
	m := tlsMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_gateway_tls_reloads_total",
			Help: "Listener certificate sets installed after their files changed.",
		}, []string{"listener"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitgate_gateway_tls_reload_errors_total",
			Help: "Listener certificate changes that did not load; the previous certificates kept serving.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.reloads, m.errors)
	return m
}

// tlsConfig builds a listener's tls.Config over a reloading certificate
// store, started here and stopped by the caller's Close. It is nil, nil
// when t is not Enabled.
func tlsConfig(ctx context.Context, name string, t ListenerTLS, nextProtos []string, every time.Duration, m tlsMetrics, lg zerolog.Logger) (*tls.Config, *certs.Store, error) {
	if !t.Enabled() {
		return nil, nil, nil
	}
	opts := certs.Options{
		Dir: t.Dir, Interval: every, Logger: lg.With().Str("listener", name).Logger(),
		Errors: m.errors.WithLabelValues(name), Reloads: m.reloads.WithLabelValues(name),
	}
	if t.Cert != "" {
		opts.Pairs = []certs.Pair{{Cert: t.Cert, Key: t.Key}}
	}
	opts.ClientCA = t.ClientCA
	st, err := certs.New(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s listener TLS: %w", name, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: st.GetCertificate, NextProtos: nextProtos}
	if t.ClientCA != "" {
		cfg.ClientCAs = st.ClientCAs()
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth == ClientAuthOptional {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
		// Each handshake takes the CA pool of the current reload.
		cfg.GetConfigForClient = st.ConfigForClient(cfg.Clone())
	}
	st.Start(ctx)
	return cfg, st, nil
}

// withClientSubject removes every client-sent spelling of header and, when
// the connection presented a verified client certificate, sets header to
// its subject, so an upstream can trust the value it reads.
func withClientSubject(next http.Handler, header string) http.Handler {
	header = http.CanonicalHeaderKey(header)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers.DeleteAll(r.Header, header)
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			r.Header[header] = []string{printable(r.TLS.VerifiedChains[0][0].Subject.String())}
		}
		next.ServeHTTP(w, r)
	})
}

// printable replaces control characters, which a header value cannot
// carry, with "?".
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
