package reply

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// grpcRecorder is a ResponseWriter of a gRPC call, as the gateway's
// observation is, wrapped once more as the metrics recorder wraps it.
type grpcRecorder struct {
	*httptest.ResponseRecorder
	grpc bool
}

func (g grpcRecorder) GRPC() bool { return g.grpc }

type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestWriteGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		grpc           bool
		status         int
		body           *Body
		wantStatus     int
		wantGRPCStatus string
		wantMessage    string
	}{
		{"no route", true, http.StatusNotFound, New("no_route", "no route", ""), 200, "12", "no route"},
		{"breaker names the upstream", true, http.StatusServiceUnavailable, New("breaker_open", "circuit breaker open", "shop"), 200, "14", "circuit breaker open (upstream shop)"},
		{"timeout", true, http.StatusGatewayTimeout, New("upstream_timeout", "upstream timeout", ""), 200, "4", "upstream timeout"},
		{"rate limited", true, http.StatusTooManyRequests, New("rate_limited", "slow down", ""), 200, "8", "slow down"},
		{"unauthenticated", true, http.StatusUnauthorized, New("unauthorized", "API key required", ""), 200, "16", "API key required"},
		{"forbidden", true, http.StatusForbidden, New("forbidden", "no", ""), 200, "7", "no"},
		{"bad request is internal", true, http.StatusBadRequest, New("bad_path", "100% bad\n", ""), 200, "13", "100%25 bad%0A"},
		{"not a gRPC call keeps JSON", false, http.StatusNotFound, New("no_route", "no route", ""), 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			Write(wrapped{grpcRecorder{rec, tc.grpc}}, tc.status, tc.body)
			if rec.Code != tc.wantStatus || rec.Header().Get("Grpc-Status") != tc.wantGRPCStatus || rec.Header().Get("Grpc-Message") != tc.wantMessage {
				t.Fatalf("got %d grpc-status %q grpc-message %q, want %d %q %q", rec.Code,
					rec.Header().Get("Grpc-Status"), rec.Header().Get("Grpc-Message"), tc.wantStatus, tc.wantGRPCStatus, tc.wantMessage)
			}
			if tc.grpc && (rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "application/grpc") {
				t.Fatalf("gRPC answer has body %q, Content-Type %q; want none, application/grpc", rec.Body, rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestIsGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		contentType string
		want        bool
	}{
		{"application/grpc", true},
		{"application/grpc+proto", true},
		{"Application/GRPC;charset=utf-8", true},
		{"application/grpc-web", false},
		{"application/grpcx", false},
		{"application/json", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.contentType, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if got := IsGRPC(r); got != tc.want {
				t.Fatalf("IsGRPC(%q) = %v, want %v", tc.contentType, got, tc.want)
			}
		})
	}
}
