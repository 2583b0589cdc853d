package reply

import (
	"net/http"
	"strconv"
	"strings"
)

// IsGRPC reports whether r is a gRPC call: its Content-Type is
// application/grpc, or application/grpc+<codec> or ;<parameters>.
func IsGRPC(r *http.Request) bool {
	v := r.Header["Content-Type"]
	if len(v) == 0 || len(v[0]) < len("application/grpc") || !strings.EqualFold(v[0][:len("application/grpc")], "application/grpc") {
		return false
	}
	rest := v[0][len("application/grpc"):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// GRPCWriter is implemented by a ResponseWriter that knows whether its
// request is a gRPC call (the gateway's per-request observation). Write
// looks for it on w and on what w unwraps to (an Unwrap() http.ResponseWriter
// method, as http.ResponseController does).
type GRPCWriter interface {
	// GRPC reports whether the request answered is a gRPC call.
	GRPC() bool
}

// maxUnwrap bounds the walk down wrapped ResponseWriters.
const maxUnwrap = 8

func forGRPC(w http.ResponseWriter) bool {
	for range maxUnwrap {
		if g, ok := w.(GRPCWriter); ok {
			return g.GRPC()
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}

// gRPC status codes (google.golang.org/grpc/codes) the gateway answers.
const (
	codeDeadlineExceeded  = 4
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

// GRPCCode is the gRPC status code the gateway answers a gRPC call with
// instead of the HTTP status: 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 404 and 405 UNIMPLEMENTED, 413 and 429 RESOURCE_EXHAUSTED, 504
// DEADLINE_EXCEEDED, 502 and 503 UNAVAILABLE, anything else INTERNAL (as in
// gRPC's own mapping of HTTP statuses, except that the gateway's 504 is a
// deadline it enforced and its 429 a limit it applied).
func GRPCCode(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusForbidden:
		return codePermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return codeUnimplemented
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codeResourceExhausted
	case http.StatusGatewayTimeout:
		return codeDeadlineExceeded
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return codeUnavailable
	}
	return codeInternal
}

// grpcStatus holds the grpc-status values, indexed by code.
var grpcStatus = func() [17][]string {
	var out [17][]string
	for i := range out {
		out[i] = []string{strconv.Itoa(i)}
	}
	return out
}()

var grpcContentType = []string{"application/grpc"}

// writeGRPC answers a gRPC call trailers-only: HTTP 200, no body, the
// status in grpc-status and grpc-message.
func writeGRPC(w http.ResponseWriter, status int, body *Body) {
	h := w.Header()
	delete(h, "Content-Length")
	h["Content-Type"] = grpcContentType
	h["Grpc-Status"] = grpcStatus[GRPCCode(status)]
	h["Grpc-Message"] = body.grpcMsg
	w.WriteHeader(http.StatusOK)
}

// grpcEncode percent-encodes s as grpc-message requires: every byte
// outside printable ASCII, and '%', as %XX.
func grpcEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
