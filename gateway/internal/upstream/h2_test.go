package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// TestProtocolSelectsTransport sends one request through the pool's
// transport to a real server of each protocol and checks the protocol the
// server saw, and that an HTTP/2 response's trailers arrive.
func TestProtocolSelectsTransport(t *testing.T) {
	t.Parallel()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, r.Proto)
		w.Header().Set("Grpc-Status", "0")
	})
	tests := []struct {
		name      string
		protocol  string
		server    func() *httptest.Server
		wantProto string
	}{
		{"http1 plain", schemas.ProtocolHTTP1, func() *httptest.Server { return httptest.NewServer(handler) }, "HTTP/1.1"},
		{"h2c by prior knowledge", schemas.ProtocolH2C, func() *httptest.Server {
			s := httptest.NewUnstartedServer(handler)
			s.Config.Protocols = new(http.Protocols)
			s.Config.Protocols.SetUnencryptedHTTP2(true)
			s.Start()
			return s
		}, "HTTP/2.0"},
		{"h2 over TLS", schemas.ProtocolH2, func() *httptest.Server {
			s := httptest.NewUnstartedServer(handler)
			s.EnableHTTP2 = true
			s.StartTLS()
			return s
		}, "HTTP/2.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := tc.server()
			defer srv.Close()
			p := mustPool(t, schemas.Upstream{Targets: []string{srv.URL}, Protocol: tc.protocol}, nil)
			if srv.TLS != nil {
				// The test server's own CA: the upstream TLS settings
				// (issue 13 item 1) set this from the config.
				p.transport.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/x", strings.NewReader("hello"))
			res, err := p.Transport().RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if string(body) != tc.wantProto {
				t.Errorf("server saw %q, want %q", body, tc.wantProto)
			}
			if got := res.Trailer.Get("Grpc-Status"); got != "0" {
				t.Errorf("trailer Grpc-Status = %q, want 0", got)
			}
		})
	}
}
